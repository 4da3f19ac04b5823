// power_uri parsing and masking on arbitrary input: only PowerUriError is ever thrown, any password
// written with %-escapes comes back exactly, passes the API's check, and never survives masking.
import test from 'ava';
import fc from 'fast-check';
import { powerUriCheck } from '../../../src/appliance/db/fields.js';
import { parsePowerTarget, PowerUriError, redactPowerUri } from '../../../src/appliance/power/uri.js';
import { budget, timed } from './budget.js';

test('arbitrary text: a target or a PowerUriError, quickly; masking never throws', (t) => {
  const scheme = fc.constantFrom('ipmi://', 'ipmi:///', 'redfish://', 'redfish+http://', 'libvirt://', 'vbox://', '', 'x://');
  fc.assert(
    fc.property(scheme, fc.string({ maxLength: 300, unit: 'binary' }), (prefix, rest) => {
      const uri = prefix + rest;
      timed('parsePowerTarget', () => {
        try {
          parsePowerTarget(uri);
        } catch (err) {
          if (!(err instanceof PowerUriError)) throw err;
        }
      });
      timed('redactPowerUri', () => redactPowerUri(uri));
    }),
    budget(0.05, 3000),
  );
  t.pass();
});

test('any password, %-escaped, parses back exactly, passes the API check and is masked away', (t) => {
  const password = fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }).filter((p) => !/[\p{C}\p{Zl}\p{Zp}]/u.test(p) && p.length <= 128);
  const forms = fc.constantFrom(
    (pw: string) => `ipmi:///admin:${pw}@10.1.15.1`,
    (pw: string) => `ipmi:///admin:${pw}@bmc7.rack2:6230`,
    (pw: string) => `ipmi://ops@relay_1/admin:${pw}@10.1.15.1`,
    (pw: string) => `redfish://root:${pw}@10.0.0.9/redfish/v1/Systems/1`,
    (pw: string) => `redfish+http://root:${pw}@10.0.0.9:8000`,
  );
  fc.assert(
    fc.property(password, forms, (raw, form) => {
      // A marker makes the password unlike any other part of the URI.
      const secret = `Zq${raw}`;
      const escaped = encodeURIComponent(secret).replace(/[!'()*~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
      const uri = form(escaped);
      if (uri.startsWith('ipmi') && Buffer.byteLength(secret) > 20) {
        // An IPMI 2.0 key has at most 20 bytes: refused, in words that do not hold the password.
        let refusal = '';
        try {
          parsePowerTarget(uri);
        } catch (err) {
          refusal = (err as Error).message;
        }
        if (!refusal.includes('longer than 20 bytes') || refusal.includes('Zq')) throw new Error(`a ${Buffer.byteLength(secret)}-byte IPMI password gave ${JSON.stringify(refusal)}`);
        return;
      }
      const parsed = parsePowerTarget(uri).target as { password?: string };
      if (parsed.password !== secret) throw new Error(`password came back as ${JSON.stringify(parsed.password)}`);
      if (powerUriCheck(uri) !== true) throw new Error(`the API refuses ${uri}: ${String(powerUriCheck(uri))}`);
      const shown = redactPowerUri(uri);
      if (shown.includes(escaped) || shown.includes('Zq')) throw new Error(`masking left the password in ${shown}`);
      if (!shown.includes(':********@')) throw new Error(`no mask in ${shown}`);
    }),
    budget(0.05, 2000),
  );
  t.pass();
});
