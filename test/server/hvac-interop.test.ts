/**
 * The real Vault client, hvac (Debian's python3-hvac), against `enseal serve`, unchanged except for
 * `strict_http=True`: Node's HTTP parser has no LIST method, so listing goes as GET ?list=true, the standard
 * substitution hvac and Vault's own Go client provide.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { python, runAsync } from '../helpers/peers.js';
import { devServer } from './helpers.js';

const py = python(['hvac'], 'apt-get install python3-hvac');
let ctx: Awaited<ReturnType<typeof devServer>>;

beforeAll(async () => {
  if (py.available) ctx = await devServer();
});
afterAll(async () => ctx?.server.close());

const PROGRAM = `
import base64, json, os, sys
import hvac
c = hvac.Client(url=os.environ['ADDR'], token=os.environ['TOKEN'], verify=os.environ['CACERT'], strict_http=True)
t = c.secrets.transit
b = lambda s: base64.b64encode(s.encode()).decode()
u = lambda s: base64.b64decode(s).decode()
out = {}
t.create_key(name='hvac-key')
out['listed'] = 'hvac-key' in t.list_keys()['data']['keys']
ct = t.encrypt_data(name='hvac-key', plaintext=b('from python'))['data']['ciphertext']
out['ct'] = ct
out['plain'] = u(t.decrypt_data(name='hvac-key', ciphertext=ct)['data']['plaintext'])
batch = t.encrypt_data(name='hvac-key', plaintext='', batch_input=[{'plaintext': b('a')}, {'plaintext': b('b')}])['data']['batch_results']
dec = t.decrypt_data(name='hvac-key', ciphertext='', batch_input=[{'ciphertext': r['ciphertext']} for r in batch])['data']['batch_results']
out['batch'] = [u(r['plaintext']) for r in dec]
t.rotate_key(name='hvac-key')
out['latest'] = t.read_key(name='hvac-key')['data']['latest_version']
out['rewrapped'] = t.rewrap_data(name='hvac-key', ciphertext=ct)['data']['ciphertext']
dk = t.generate_data_key(name='hvac-key', key_type='plaintext', bits=256)['data']
out['datakey_len'] = len(base64.b64decode(dk['plaintext']))
out['datakey_roundtrip'] = t.decrypt_data(name='hvac-key', ciphertext=dk['ciphertext'])['data']['plaintext'] == dk['plaintext']
t.create_key(name='hvac-signer', key_type='ed25519')
sig = t.sign_data(name='hvac-signer', hash_input=b('contract'))['data']['signature']
out['verified'] = t.verify_signed_data(name='hvac-signer', hash_input=b('contract'), signature=sig)['data']['valid']
out['forged'] = t.verify_signed_data(name='hvac-signer', hash_input=b('contracT'), signature=sig)['data']['valid']
# hvac 0.11 predates Vault's hmac key type; create it through the client's raw adapter.
c.adapter.post('/v1/transit/keys/hvac-mac', json={'type': 'hmac'})
mac = t.generate_hmac(name='hvac-mac', hash_input=b('m'))['data']['hmac']
out['hmac_ok'] = t.verify_signed_data(name='hvac-mac', hash_input=b('m'), hmac=mac)['data']['valid']
try:
    t.decrypt_data(name='hvac-key', ciphertext='vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')
    out['bad'] = 'accepted'
except hvac.exceptions.InvalidRequest as e:
    out['bad'] = 'InvalidRequest'
print(json.dumps(out))
`;

describe('interop: hvac (the Python Vault client)', () => {
  it.skipIf(!py.available)(
    'creates, encrypts, decrypts, batches, rotates, rewraps, datakeys, signs, verifies and HMACs',
    async () => {
      const env = { ...process.env, ADDR: ctx.server.url, TOKEN: ctx.token, CACERT: ctx.server.caFile! };
      const out = JSON.parse((await runAsync(py.command, ['-c', PROGRAM], { env })).toString());
      expect(out).toMatchObject({
        listed: true,
        plain: 'from python',
        batch: ['a', 'b'],
        latest: 2,
        datakey_len: 32,
        datakey_roundtrip: true,
        verified: true,
        forged: false,
        hmac_ok: true,
        bad: 'InvalidRequest',
      });
      expect(out.rewrapped).toMatch(/^vault:v2:/);
      // And the other direction: what hvac encrypted, the library decrypts.
      const plain = await ctx.server.km.decrypt('hvac-key', out.ct);
      expect(Buffer.from(plain).toString()).toBe('from python');
    },
  );
});
