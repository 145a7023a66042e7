import { pointsToReading, type PointValue } from './common';
import { modbusProfileRegisters } from './modbus';
import { MODBUS_PROFILES, SNMP_PROFILES, unitFitsKind } from './schema';
import { snmpProfilePoints } from './snmp';

/** pointsToReading's choice of reading: heat removed is cooling energy, never an IT meter's. */

const heat: PointValue = { label: 'holding register 88', kind: 'thermal_power', unit: 'kW', scale: 0.1, raw: 45 };
const air: PointValue = { label: 'input register 200', kind: 'supply_air_temperature', unit: 'C', scale: 1, raw: 24 };

test('a cooling meter with only heat removed reads thermal power (4.5 kW) with its supply air', () => {
  const r = pointsToReading({ name: 'inrow', role: 'cooling' }, 'modbus', [heat, air]);
  expect(r).toMatchObject({ kind: 'power', watts: 4500, domain: 'cooling', heat: { supplyAirCelsius: 24 } });
});

test('an IT meter with only heat removed is refused, naming the meter', () => {
  expect(() => pointsToReading({ name: 'room-pdu', role: 'it' }, 'snmp', [heat])).toThrow(
    /meter "room-pdu" \(snmp\): role "it" needs an electrical power or energy point/,
  );
});

test('an IT meter with electrical power reads it (heat points beside it are ignored)', () => {
  const watts: PointValue = { label: 'OID 1.2', kind: 'power', unit: 'W', scale: 1, raw: 1234 };
  const r = pointsToReading({ name: 'room-pdu', role: 'it' }, 'snmp', [watts, heat]);
  expect(r).toMatchObject({ kind: 'power', watts: 1234, domain: 'facility' });
  expect(r).not.toHaveProperty('heat');
});

test('every built-in profile point has a unit that fits its kind (user points are checked by the config schema)', () => {
  const points = [
    ...SNMP_PROFILES.flatMap((p) => snmpProfilePoints(p, p === 'liebert-flexible' ? '1.2.1.5000' : undefined)),
    ...MODBUS_PROFILES.flatMap((p) => modbusProfileRegisters(p)),
  ];
  expect(points.length).toBeGreaterThan(10);
  for (const p of points) expect(`${p.kind} ${p.unit} ${unitFitsKind(p.kind, p.unit)}`).toBe(`${p.kind} ${p.unit} true`);
});
