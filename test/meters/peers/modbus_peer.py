"""Modbus TCP peer for the jouleflow meter tests (python3-pymodbus 3.0, zero_mode=True).

Usage: modbus_peer.py PORT [INITIAL_KWH]
Emulates an Eastron SDM630 (input 0x0034 total power float32 W, 0x0156 total kWh float32, high
word first), a Liebert iCOM (input 31001 → address 1000 cooling load kW×10; 31010–31019 →
1009.. instantaneous power uint32 W, 2 registers each) and an APC InRow (holding 88 cool output,
uint32 tenths of kW), plus a garbage float (NaN) at input 200.
Values change when the test says so: each stdin line "step" (or "reset": the user zeroes the kWh
counter) moves every value on; the new values are printed as "state KWH POWER LIEBERT_SUM".
"""
import logging
import struct
import sys
import threading


# pymodbus 3.0's server package imports serial_asyncio (python3-serial-asyncio) even for TCP;
# Debian does not pull it in. A TCP server never uses it, so a stand-in module is enough.
if "serial_asyncio" not in sys.modules:
    try:
        import serial_asyncio  # noqa: F401
    except ImportError:
        import types

        stub = types.ModuleType("serial_asyncio")
        stub.create_serial_connection = None
        sys.modules["serial_asyncio"] = stub

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server import StartTcpServer

logging.basicConfig(level=logging.ERROR)

port = int(sys.argv[1])


ir = ModbusSequentialDataBlock(0, [0] * 2000)
hr = ModbusSequentialDataBlock(0, [0] * 200)
store = ModbusSlaveContext(ir=ir, hr=hr, zero_mode=True)
context = ModbusServerContext(slaves=store, single=True)


def f32(v):
    hi, lo = struct.unpack(">HH", struct.pack(">f", v))
    return [hi, lo]


def u32(v):
    return [(v >> 16) & 0xFFFF, v & 0xFFFF]


state = {"step": 0, "kwh": float(sys.argv[2]) if len(sys.argv) > 2 else 1000.0}


def apply():
    step = state["step"]
    power = 3000.0 + 500.0 * (step % 4)  # W
    liebert = [1200 + 10 * (step % 3), 800 + 5 * (step % 2), 650, 400, 150]  # W per component
    kwh = state["kwh"]
    # One setValues per value so that a reader never sees half a float.
    store.setValues(4, 0x0034, f32(power))
    store.setValues(4, 0x0156, f32(kwh))
    store.setValues(4, 1000, [int(sum(liebert) / 100)])  # cooling load kW×10
    regs = []
    for w in liebert:
        regs += u32(w)
    store.setValues(4, 1009, regs)
    store.setValues(4, 200, [0x7FC0, 0x0000])  # NaN
    store.setValues(3, 88, u32(45))  # APC InRow cool output, tenths of kW
    served_kwh = struct.unpack(">f", struct.pack(">f", kwh))[0]
    sys.stdout.write("state %r %r %d\n" % (served_kwh, power, sum(liebert)))
    sys.stdout.flush()


def control():
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "reset":
            state["kwh"] = 0.5
        elif cmd == "step":
            state["kwh"] += 0.25 + 0.125 * (state["step"] % 3)
        else:
            continue
        state["step"] += 1
        apply()


apply()
threading.Thread(target=control, daemon=True).start()
# Reuse the address: the test restarts the peer on the same port while old connections linger.
StartTcpServer(context=context, address=("127.0.0.1", port), allow_reuse_address=True)
