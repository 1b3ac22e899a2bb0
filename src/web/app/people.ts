/**
 * The Contacts, Devices and Recovery panes: contacts with their safety numbers (digits, a QR code of the
 * payload, and the payload as base64 text), this user's devices proved by the directory (approve a new one, revoke one, warnings from
 * monitoring), and the identity key's passphrase backup and recovery shares.
 */
import { base64Decode, base64Encode } from '../../crypto/index.js';
import { parseDeviceRequest, type E2eeWarning } from '../index.js';
import { busy, byId, el, field, fill, formatTime } from './dom.js';
import { qrSvg } from './qr.js';
import type { Session } from './session.js';

type Report = (err: unknown) => void;

/** Who signed a device into the directory, as the Devices table says it. */
const ADDED_BY: Readonly<Record<string, string>> = {
  identity: 'the identity key',
  recovery: 'the recovery key',
  device: 'another device',
};

/** What a warning of the client means, in one sentence for the page. */
export function warningText(w: E2eeWarning): string {
  switch (w.kind) {
    case 'unexpected-device':
      return `A device you did not approve here was added to your account: ${w.device}.`;
    case 'expected-device-revoked':
      return `Your device ${w.device} was revoked.`;
    case 'message-rejected':
      return `A message was rejected (${w.code}).`;
    case 'messages-missing':
      return `Messages from ${w.sender.user}/${w.sender.device} never arrived (${w.code}).`;
    case 'history-not-shared':
      return `The new members were added, but the group's past could not be sent to them (${w.code}).`;
    case 'sender-mismatch':
      return `The server named ${w.claimed.user} as the sender of a message from ${w.sender.user}.`;
  }
}

export class PeoplePanes {
  readonly #session: Session;
  readonly #report: Report;
  readonly #notify: (text: string) => void;
  #contact: string | undefined;

  constructor(session: Session, report: Report, notify: (text: string) => void) {
    this.#session = session;
    this.#report = report;
    this.#notify = notify;
    const lookup = byId<HTMLFormElement>('contact-lookup');
    lookup.addEventListener('submit', (e) => {
      e.preventDefault();
      void busy(
        lookup.querySelector('button'),
        async () => {
          const user = field(lookup, 'user').value.trim();
          await this.#session.serial(() => this.#client.verifyUser(user));
          field(lookup, 'user').value = '';
          await this.renderContacts();
          await this.#showSafety(user);
        },
        report,
      );
    });
    byId('safety-verify').addEventListener(
      'click',
      (e) => void busy(e.currentTarget as HTMLButtonElement, () => this.#verify(), report),
    );
    const approve = byId<HTMLFormElement>('device-approve');
    approve.addEventListener('submit', (e) => {
      e.preventDefault();
      void busy(
        approve.querySelector('button'),
        async () => {
          const request = parseDeviceRequest(field(approve, 'request').value.trim());
          await this.#session.serial(() => this.#client.approveDevice(request));
          field(approve, 'request').value = '';
          this.#notify(
            `Approved ${request.user}/${request.device}. Add it to your groups with “Add member” ${request.user}.`,
          );
          await this.renderDevices();
        },
        report,
      );
    });
    const backup = byId<HTMLFormElement>('backup-form');
    backup.addEventListener('submit', (e) => {
      e.preventDefault();
      void busy(
        backup.querySelector('button'),
        async () => {
          const pass = field(backup, 'passphrase').value;
          if (pass !== field(backup, 'again').value) throw new Error('the two passphrases differ');
          await this.#session.serial(async () =>
            this.#client.storeRecoveryBlob(await this.#client.backupIdentity(pass)),
          );
          backup.reset();
          this.#notify('Recovery backup stored. Keep the passphrase somewhere safe.');
        },
        report,
      );
    });
    const shares = byId<HTMLFormElement>('shares-form');
    shares.addEventListener('submit', (e) => {
      e.preventDefault();
      void busy(
        shares.querySelector('button'),
        async () => {
          const out = await this.#client.splitIdentity({
            shares: Number(field(shares, 'shares').value),
            threshold: Number(field(shares, 'threshold').value),
          });
          byId<HTMLTextAreaElement>('shares-out').value = out.join('\n');
          byId('shares-out-label').hidden = false;
        },
        report,
      );
    });
  }

  get #client() {
    return this.#session.client;
  }

  async renderContacts(): Promise<void> {
    const contacts = await this.#client.contacts();
    const body = byId('contacts-table').querySelector('tbody')!;
    fill(
      body,
      contacts.length === 0
        ? el('tr', {}, el('td', { colspan: 4, class: 'empty' }, 'No contacts yet'))
        : contacts.map((c) =>
            el(
              'tr',
              {},
              el('td', {}, c.user),
              el('td', {}, el('code', {}, c.fingerprint)),
              el(
                'td',
                {},
                c.verified
                  ? el('span', { class: 'badge ok' }, 'verified')
                  : el('span', { class: 'badge' }, 'not verified'),
              ),
              el(
                'td',
                { class: 'right' },
                el(
                  'button',
                  {
                    type: 'button',
                    class: 'secondary small',
                    'aria-label': `Safety number with ${c.user}`,
                    onclick: (e: Event) =>
                      void busy(
                        e.currentTarget as HTMLButtonElement,
                        () => this.#showSafety(c.user),
                        this.#report,
                      ),
                  },
                  'Safety number',
                ),
              ),
            ),
          ),
    );
  }

  async #showSafety(user: string): Promise<void> {
    const sn = await this.#session.serial(() => this.#client.safetyNumber(user));
    this.#contact = user;
    byId('safety').hidden = false;
    byId('safety-title').textContent = `Safety number with ${user}`;
    fill(
      byId('safety-digits'),
      sn.groups.map((g) => el('span', {}, g)),
    );
    fill(byId('safety-qr'), qrSvg(sn.qrPayload, `QR code of the safety number with ${user}`));
    byId<HTMLInputElement>('safety-payload').value = base64Encode(sn.qrPayload);
    byId<HTMLInputElement>('safety-scanned').value = '';
  }

  async #verify(): Promise<void> {
    const user = this.#contact;
    if (user === undefined) return;
    const scanned = byId<HTMLInputElement>('safety-scanned').value.trim();
    const ok = await this.#session.serial(() =>
      this.#client.markVerified(user, scanned === '' ? undefined : base64Decode(scanned)),
    );
    if (!ok) throw new Error(`the payload does not match: this is not ${user}'s safety number`);
    this.#notify(`${user} is verified`);
    await this.renderContacts();
  }

  async renderDevices(): Promise<void> {
    const [devices, warnings] = await this.#session.serial(
      async () => [await this.#client.devices(), await this.#client.monitor()] as const,
    );
    const body = byId('devices-table').querySelector('tbody')!;
    fill(
      body,
      devices.map((d) =>
        el(
          'tr',
          {},
          el('td', {}, d.device, d.current ? el('span', { class: 'muted' }, ' (this browser)') : undefined),
          el('td', {}, ADDED_BY[d.addedBy] ?? d.addedBy),
          el('td', {}, formatTime(d.createdAt)),
          el(
            'td',
            { class: 'right' },
            d.current
              ? undefined
              : el(
                  'button',
                  {
                    type: 'button',
                    class: 'danger small',
                    'aria-label': `Revoke ${d.device}`,
                    onclick: (e: Event) =>
                      void busy(
                        e.currentTarget as HTMLButtonElement,
                        async () => {
                          if (!confirm(`Revoke ${d.device}? It loses access to new messages.`)) return;
                          await this.#session.serial(() => this.#client.revokeDevice(d.device));
                          await this.renderDevices();
                        },
                        this.#report,
                      ),
                  },
                  'Revoke',
                ),
          ),
        ),
      ),
    );
    fill(
      byId('device-warnings'),
      warnings.map((w) =>
        el(
          'li',
          { class: 'warning' },
          warningText(w),
          w.kind === 'unexpected-device'
            ? el(
                'button',
                {
                  type: 'button',
                  class: 'secondary small',
                  onclick: (e: Event) =>
                    void busy(
                      e.currentTarget as HTMLButtonElement,
                      async () => {
                        await this.#session.serial(() => this.#client.acknowledgeDevice(w.device));
                        await this.renderDevices();
                      },
                      this.#report,
                    ),
                },
                'It is mine',
              )
            : undefined,
        ),
      ),
    );
  }
}
