"""snmpd `pass` helper for the jouleflow meter tests.

Usage (from snmpd): snmp-pass.py SPEC.json -g OID   (GET; GETNEXT is not served)
SPEC: {"t0": epoch seconds, "log": path,
       "series": {"OID": {"base": n, "rate": per second, "type": "integer"}},
       "static": {"OID": {"type": "integer"|"string"|"gauge", "value": v}}}
Growing values are base + floor(rate * (now - t0)); every value served is appended to the log
as "OID VALUE" so that the test computes the expected energy from what was served.
"""
import json
import sys
import time


def main():
    if len(sys.argv) < 4:
        return
    spec_path, mode, oid = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode != "-g":
        return
    with open(spec_path) as f:
        spec = json.load(f)
    key = oid.lstrip(".")
    if key in spec.get("series", {}):
        s = spec["series"][key]
        value = int(s["base"] + int(s["rate"] * (time.time() - spec["t0"])))
        typ = s.get("type", "integer")
    elif key in spec.get("static", {}):
        s = spec["static"][key]
        value = s["value"]
        typ = s.get("type", "integer")
    else:
        return
    sys.stdout.write("%s\n%s\n%s\n" % (oid, typ, value))
    sys.stdout.flush()
    with open(spec["log"], "a") as f:
        f.write("%s %s\n" % (key, value))


main()
