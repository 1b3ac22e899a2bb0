/**
 * The Chats pane: the groups this device is in, one conversation at a time, its members (add, remove), the
 * messages, and files shared by drag and drop. Uploads stream the File through the client's encryption in
 * parts; downloads stream the decrypted parts to disk (File System Access API, when the user asks for it and
 * the browser has it) or into a Blob.
 */
import { utf8Decode, utf8Encode } from '../../crypto/index.js';
import type { E2eeEvent, SharedFile } from '../index.js';
import { busy, byId, el, field, fill, formatBytes } from './dom.js';
import { History, type HistoryEntry } from './history.js';
import type { Session } from './session.js';

type Report = (err: unknown) => void;

/** `File.stream()` as a byte source that reports how far it got. */
async function* counted(file: Blob, onProgress: (done: number) => void): AsyncGenerator<Uint8Array> {
  const reader = file.stream().getReader();
  let done = 0;
  try {
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) return;
      done += value.length;
      onProgress(done);
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

interface SaveTarget {
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

interface FilePickerWindow {
  showSaveFilePicker?: (options: { suggestedName?: string }) => Promise<{
    createWritable(): Promise<{ write(data: Uint8Array): Promise<void>; close(): Promise<void> }>;
  }>;
}

export class ChatPane {
  readonly #session: Session;
  readonly #history: History;
  readonly #report: Report;
  readonly #notify: (text: string) => void;
  #current: string | undefined;
  #groups: string[] = [];
  readonly #unread = new Set<string>();
  readonly #removed = new Set<string>();

  constructor(session: Session, report: Report, notify: (text: string) => void) {
    this.#session = session;
    this.#history = new History(session.state);
    this.#report = report;
    this.#notify = notify;
    byId('group-create').addEventListener(
      'click',
      (e) => void busy(e.currentTarget as HTMLButtonElement, () => this.#createGroup(), report),
    );
    const addForm = byId<HTMLFormElement>('member-add');
    addForm.addEventListener('submit', (e) => {
      e.preventDefault();
      const input = field(addForm, 'user');
      void busy(addForm.querySelector('button'), () => this.#addMember(input), report);
    });
    const composer = byId<HTMLFormElement>('composer');
    composer.addEventListener('submit', (e) => {
      e.preventDefault();
      void busy(composer.querySelector('button'), () => this.#send(field(composer, 'text')), report);
    });
    const input = byId<HTMLInputElement>('file-input');
    input.addEventListener('change', () => {
      const file = input.files?.[0];
      input.value = '';
      if (file) void busy(null, () => this.#share(file), report);
    });
    // A file dropped beside the zone must not make the browser navigate away to it.
    for (const type of ['dragover', 'drop'])
      document.addEventListener(type, (e) => {
        if (!(e.target instanceof Node) || !byId('dropzone').contains(e.target)) e.preventDefault();
      });
    const zone = byId('dropzone');
    zone.addEventListener('dragover', (e) => {
      e.preventDefault();
      zone.classList.add('over');
    });
    zone.addEventListener('dragleave', () => zone.classList.remove('over'));
    zone.addEventListener('drop', (e) => {
      e.preventDefault();
      zone.classList.remove('over');
      const file = e.dataTransfer?.files[0];
      if (file) void busy(null, () => this.#share(file), report);
    });
  }

  get #client() {
    return this.#session.client;
  }

  /** Reloads the group list (and the open conversation). */
  async refresh(): Promise<void> {
    this.#groups = await this.#client.groups();
    if (this.#current === undefined && this.#groups.length > 0) this.#current = this.#groups[0];
    await this.#renderGroups();
    await this.#renderConversation();
  }

  async #title(groupId: string): Promise<string> {
    if (this.#removed.has(groupId) && !this.#groups.includes(groupId)) return 'Former group';
    const users = [...new Set((await this.#client.members(groupId)).map((m) => m.user))].filter(
      (u) => u !== this.#client.user,
    );
    return users.length === 0 ? 'Just you' : users.sort().join(', ');
  }

  async #renderGroups(): Promise<void> {
    const ids = [...this.#groups, ...[...this.#removed].filter((g) => !this.#groups.includes(g))];
    const items: HTMLElement[] = [];
    for (const g of ids) {
      const title = await this.#title(g);
      items.push(
        el(
          'li',
          {},
          el(
            'button',
            {
              type: 'button',
              class: g === this.#current ? 'group current' : 'group',
              'aria-current': g === this.#current ? 'true' : undefined,
              onclick: () => {
                this.#current = g;
                this.#unread.delete(g);
                void this.refresh().catch(this.#report);
              },
            },
            el('span', { class: 'group-name' }, title),
            this.#unread.has(g) ? el('span', { class: 'dot', 'aria-label': 'new messages' }) : undefined,
          ),
        ),
      );
    }
    fill(byId('group-list'), items.length > 0 ? items : el('li', { class: 'muted' }, 'No groups yet'));
  }

  async #renderConversation(): Promise<void> {
    const g = this.#current;
    byId('no-group').hidden = g !== undefined;
    byId('group-view').hidden = g === undefined;
    if (g === undefined) return;
    const active = this.#groups.includes(g);
    byId('group-title').textContent = await this.#title(g);
    byId('group-id').textContent = `group ${g.slice(0, 12)}…`;
    byId('member-add').hidden = !active;
    byId('composer').hidden = !active;
    byId('dropzone').hidden = !active;
    const members = active ? await this.#client.members(g) : [];
    fill(
      byId('member-list'),
      members.map((m) => {
        const me = m.user === this.#client.user && m.device === this.#client.device;
        const name = `${m.user}/${m.device}`;
        return el(
          'li',
          {},
          el('span', {}, name, me ? el('span', { class: 'muted' }, ' (this device)') : undefined),
          me
            ? undefined
            : el(
                'button',
                {
                  type: 'button',
                  class: 'link danger',
                  'aria-label': `Remove ${m.user}`,
                  onclick: (e: Event) =>
                    void busy(
                      e.currentTarget as HTMLButtonElement,
                      () => this.#remove(g, m.user),
                      this.#report,
                    ),
                },
                'Remove',
              ),
        );
      }),
    );
    const entries = await this.#history.of(g);
    const list = byId('messages');
    fill(
      list,
      entries.length === 0
        ? el('li', { class: 'muted notice-line' }, 'No messages yet')
        : entries.map((e) => this.#line(e)),
    );
    list.scrollTop = list.scrollHeight;
  }

  #line(e: HistoryEntry): HTMLElement {
    if (e.notice !== undefined) return el('li', { class: 'notice-line' }, e.notice);
    const mine = e.from === `${this.#client.user}/${this.#client.device}`;
    const when = new Date(e.at).toLocaleTimeString(undefined, { timeStyle: 'short' });
    const body =
      e.file !== undefined
        ? el(
            'div',
            { class: 'file' },
            el('span', { class: 'file-name' }, e.file.name || 'file'),
            el('span', { class: 'muted small' }, ` ${formatBytes(e.file.size)} encrypted `),
            el(
              'button',
              {
                type: 'button',
                class: 'secondary small',
                'aria-label': `Download ${e.file.name || 'file'}`,
                onclick: (ev: Event) =>
                  void busy(
                    ev.currentTarget as HTMLButtonElement,
                    () => this.#download(e.file!),
                    this.#report,
                  ),
              },
              'Download',
            ),
          )
        : el('div', { class: 'text' }, e.text ?? '');
    return el(
      'li',
      { class: mine ? 'message mine' : 'message' },
      el('div', { class: 'meta' }, el('span', { class: 'sender' }, mine ? 'You' : e.from), ` · ${when}`),
      body,
    );
  }

  /** Files the inbox delivered are in the history; events go in, in order, and the view follows. */
  async deliver(events: readonly E2eeEvent[]): Promise<void> {
    const additions: { groupId: string; entry: HistoryEntry }[] = [];
    const now = Date.now();
    for (const e of events) {
      const from = 'sender' in e ? `${e.sender.user}/${e.sender.device}` : '';
      if (e.kind === 'message') {
        let text: string;
        try {
          text = utf8Decode(e.data);
        } catch {
          text = `(${e.data.length} bytes of binary data)`;
        }
        additions.push({ groupId: e.groupId, entry: { seq: e.seq, from, at: now, text } });
      } else if (e.kind === 'file') {
        additions.push({ groupId: e.groupId, entry: { seq: e.seq, from, at: now, file: e.file } });
      } else if (e.kind === 'joined') {
        additions.push({
          groupId: e.groupId,
          entry: { seq: e.seq, from: '', at: now, notice: 'You joined' },
        });
        this.#notify('You were added to a group');
      } else if (e.kind === 'commit') {
        if (e.removed) {
          this.#removed.add(e.groupId);
          additions.push({
            groupId: e.groupId,
            entry: { seq: e.seq, from: '', at: now, notice: 'You were removed from this group' },
          });
        } else {
          additions.push({
            groupId: e.groupId,
            entry: { seq: e.seq, from: '', at: now, notice: `Members changed (epoch ${e.epoch})` },
          });
        }
      } else if (e.kind === 'rejected') {
        additions.push({
          groupId: e.groupId,
          entry: { seq: e.seq, from: '', at: now, notice: `A message was rejected (${e.code})` },
        });
      } else if (e.kind === 'history') {
        for (const h of e.entries) {
          const by = `${h.sender.user}/${h.sender.device}`;
          const entry = h.file
            ? { seq: e.seq, from: by, at: h.at, file: h.file }
            : { seq: e.seq, from: by, at: h.at, text: h.data ? utf8Decode(h.data) : '' };
          additions.push({ groupId: e.groupId, entry });
        }
        additions.push({
          groupId: e.groupId,
          entry: {
            seq: e.seq,
            from: '',
            at: now,
            notice: `${e.entries.length} earlier messages, shared by ${from} when you joined`,
          },
        });
      } else if (e.kind === 'missing') {
        additions.push({
          groupId: e.groupId,
          entry: {
            seq: 0,
            from: '',
            at: now,
            notice: `${e.to - e.from + 1} message(s) from ${from} never arrived (${e.code})`,
          },
        });
      }
      if (e.groupId !== this.#current) this.#unread.add(e.groupId);
    }
    await this.#history.append(additions);
    if (additions.length > 0 || events.length > 0) await this.refresh();
  }

  async #createGroup(): Promise<void> {
    const history = byId<HTMLInputElement>('group-history').checked ? 'shared' : 'none';
    const id = await this.#session.serial(() => this.#client.createGroup({ history }));
    await this.#history.append([
      { groupId: id, entry: { seq: 0, from: '', at: Date.now(), notice: 'You created this group' } },
    ]);
    this.#current = id;
    await this.refresh();
    field(byId<HTMLFormElement>('member-add'), 'user').focus();
  }

  async #addMember(input: HTMLInputElement): Promise<void> {
    const g = this.#current;
    const user = input.value.trim();
    if (g === undefined || user === '') return;
    const n = await this.#session.serial(() => this.#client.addMembers(g, [user]));
    if (n === 0)
      throw new Error(`${user} has no device that can be added (unknown user, or already a member)`);
    input.value = '';
    await this.#history.append([
      { groupId: g, entry: { seq: 0, from: '', at: Date.now(), notice: `You added ${user}` } },
    ]);
    await this.refresh();
  }

  async #remove(g: string, user: string): Promise<void> {
    await this.#session.serial(() => this.#client.removeMembers(g, [user]));
    await this.#history.append([
      { groupId: g, entry: { seq: 0, from: '', at: Date.now(), notice: `You removed ${user}` } },
    ]);
    await this.refresh();
  }

  async #send(input: HTMLInputElement): Promise<void> {
    const g = this.#current;
    const text = input.value;
    if (g === undefined || text.trim() === '') return;
    const seq = await this.#session.serial(() => this.#client.send(g, utf8Encode(text)));
    input.value = '';
    const from = `${this.#client.user}/${this.#client.device}`;
    await this.#history.append([{ groupId: g, entry: { seq, from, at: Date.now(), text } }]);
    await this.refresh();
    input.focus();
  }

  #progress(label: string, total: number): (done: number) => void {
    byId('transfer').hidden = false;
    byId('transfer-label').textContent = label;
    const bar = byId<HTMLProgressElement>('transfer-progress');
    bar.max = Math.max(total, 1);
    bar.value = 0;
    const text = byId('transfer-text');
    return (done: number) => {
      bar.value = Math.min(done, bar.max);
      text.textContent = `${formatBytes(done)} of ${formatBytes(total)}`;
    };
  }

  async #share(file: File): Promise<void> {
    const g = this.#current;
    if (g === undefined) return;
    const step = this.#progress(`Encrypting and uploading ${file.name}`, file.size);
    const shared = await this.#session.serial(() =>
      this.#client.shareFile(g, counted(file, step), file.name),
    );
    byId('transfer-label').textContent = `Shared ${file.name}`;
    const from = `${this.#client.user}/${this.#client.device}`;
    await this.#history.append([{ groupId: g, entry: { seq: 0, from, at: Date.now(), file: shared } }]);
    await this.refresh();
  }

  async #download(file: SharedFile): Promise<void> {
    const step = this.#progress(`Downloading and decrypting ${file.name || 'file'}`, file.size);
    const target = await this.#saveTarget(file);
    let done = 0;
    for await (const chunk of this.#client.fetchFile(file.blobId)) {
      await target.write(chunk);
      done += chunk.length;
      step(done);
    }
    await target.close();
    byId('transfer-label').textContent = `Downloaded ${file.name || 'file'}`;
  }

  /** Straight to disk when the user ticked it and the browser can; else parts into a Blob, then a download. */
  async #saveTarget(file: SharedFile): Promise<SaveTarget> {
    const picker = (window as unknown as FilePickerWindow).showSaveFilePicker;
    if (picker !== undefined && byId<HTMLInputElement>('save-to-disk').checked) {
      const handle = await picker({ suggestedName: file.name || 'file' });
      const writable = await handle.createWritable();
      return { write: (c) => writable.write(c), close: () => writable.close() };
    }
    const parts: BlobPart[] = [];
    return {
      write: async (c) => {
        parts.push(c as Uint8Array<ArrayBuffer>);
      },
      close: async () => {
        const url = URL.createObjectURL(new Blob(parts, { type: 'application/octet-stream' }));
        const a = el('a', { href: url, download: file.name || 'file', hidden: true });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
      },
    };
  }
}
