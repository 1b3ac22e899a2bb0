/**
 * The web client's entry (bundled into /app/app.js): opens this browser's device, shows the sign-in forms
 * or the enrolment wait when there is no device yet, and otherwise the panes, with the inbox long-polled for as
 * long as the page is open.
 */
import { EnsealError } from '../../crypto/index.js';
import { ChatPane } from './chat.js';
import { busy, byId, field, showOnly } from './dom.js';
import { PeoplePanes, warningText } from './people.js';
import { Session } from './session.js';

const VIEWS = ['view-loading', 'view-signin', 'view-enrolling', 'view-main'] as const;
const TABS = ['chats', 'contacts', 'devices', 'recovery'] as const;

let noticeTimer: ReturnType<typeof setTimeout> | undefined;

function notice(text: string, kind: 'ok' | 'bad'): void {
  const box = byId('notice');
  box.textContent = text;
  box.className = `notice ${kind}`;
  box.hidden = false;
  if (noticeTimer !== undefined) clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (box.hidden = true), kind === 'ok' ? 5000 : 12000);
}

function report(err: unknown): void {
  const text =
    err instanceof EnsealError
      ? `${err.message} (${err.code})`
      : err instanceof Error
        ? err.message
        : String(err);
  notice(text, 'bad');
}

const notify = (text: string) => notice(text, 'ok');

function onSubmit(id: string, work: (form: HTMLFormElement) => Promise<void>): void {
  const form = byId<HTMLFormElement>(id);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void busy(form.querySelector('button[type=submit]'), () => work(form), report);
  });
}

function selectTab(tab: (typeof TABS)[number], people: PeoplePanes): void {
  for (const t of TABS) {
    byId(`tab-${t}`).setAttribute('aria-selected', String(t === tab));
    byId(`pane-${t}`).hidden = t !== tab;
  }
  if (tab === 'contacts') void people.renderContacts().catch(report);
  if (tab === 'devices') void people.renderDevices().catch(report);
}

async function enterMain(session: Session): Promise<void> {
  const client = session.client;
  byId('whoami').textContent = `${client.user} · ${client.device}`;
  byId('save-to-disk-label').hidden = !('showSaveFilePicker' in window);
  const chat = new ChatPane(session, report, notify);
  const people = new PeoplePanes(session, report, notify);
  for (const t of TABS) byId(`tab-${t}`).addEventListener('click', () => selectTab(t, people));
  selectTab('chats', people);
  showOnly(VIEWS, 'view-main');
  await chat.refresh();
  const status = byId('sync-status');
  let closing = false;
  window.addEventListener('pagehide', () => (closing = true));
  void session.pollLoop(
    (events) => chat.deliver(events),
    (err) => {
      if (!closing) report(err);
    },
    (online) => (status.hidden = online),
    () => closing,
  );
}

async function waitForApproval(session: Session, user: string, request: string): Promise<void> {
  byId('enrolling-user').textContent = user;
  byId<HTMLTextAreaElement>('enrolling-request').value = request;
  showOnly(VIEWS, 'view-enrolling');
  const status = byId('enrolling-status');
  for (;;) {
    try {
      if (await session.tryCompleteEnrolment()) break;
      status.textContent = 'Waiting for approval…';
    } catch (err) {
      report(err);
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
  notify('This browser is now one of your devices');
  await enterMain(session);
}

function signIn(session: Session): void {
  showOnly(VIEWS, 'view-signin');
  onSubmit('register-form', async (f) => {
    await session.register(
      field(f, 'user').value.trim(),
      field(f, 'device').value.trim(),
      field(f, 'token').value.trim(),
    );
    f.reset();
    await enterMain(session);
  });
  onSubmit('enroll-form', async (f) => {
    const user = field(f, 'user').value.trim();
    const request = await session.requestEnrolment(user, field(f, 'device').value.trim());
    await waitForApproval(session, user, request);
  });
  onSubmit('recover-form', async (f) => {
    const shares = field(f, 'shares')
      .value.split('\n')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const passphrase = field(f, 'passphrase').value;
    if (shares.length === 0 && passphrase === '')
      throw new Error('give the recovery passphrase or the shares');
    await session.recover(
      field(f, 'user').value.trim(),
      field(f, 'device').value.trim(),
      field(f, 'token').value.trim(),
      shares.length > 0 ? { shares } : { passphrase },
    );
    f.reset();
    notify('Recovered. Your other devices see this one as new; contacts may compare safety numbers again.');
    await enterMain(session);
  });
}

async function start(): Promise<void> {
  const session = await Session.open((w) => notice(warningText(w), 'bad'));
  const phase = await session.phase();
  if (phase.kind === 'signed-out') signIn(session);
  else if (phase.kind === 'enrolling') await waitForApproval(session, phase.user, phase.request);
  else await enterMain(session);
}

start().catch((err: unknown) => {
  showOnly(VIEWS, 'view-loading');
  report(err);
});
