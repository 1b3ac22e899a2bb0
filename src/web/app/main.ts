/**
 * The web client's entry (bundled into /app/app.js): opens this browser's device, shows the sign-in forms
 * or the enrolment wait when there is no device yet, and otherwise the panes, with the inbox long-polled for as
 * long as the page is open.
 */
import { EnsealError, ErrorCode } from '../../crypto/index.js';
import { ChatPane } from './chat.js';
import { busy, byId, field, showOnly } from './dom.js';
import { PeoplePanes, warningText } from './people.js';
import { Session, peekState } from './session.js';

const VIEWS = ['view-loading', 'view-unlock', 'view-signin', 'view-enrolling', 'view-main'] as const;
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

const onWarning = (w: Parameters<typeof warningText>[0]) => notice(warningText(w), 'bad');

const isCode = (err: unknown, code: string) => err instanceof EnsealError && err.code === code;

/**
 * The sign-in forms. `session` gives the open state, opening it on the first submit when this browser has none
 * yet (`choosable`): then the user may tick the passkey box, and the state is created under a passkey for the
 * user name typed; otherwise under a key stored in the profile, as before.
 */
function signIn(session: (user: string) => Promise<Session>, choosable: boolean): void {
  showOnly(VIEWS, 'view-signin');
  const choice = byId('passkey-choice');
  choice.hidden = !choosable || typeof window.PublicKeyCredential !== 'function';
  onSubmit('register-form', async (f) => {
    const user = field(f, 'user').value.trim();
    await (
      await session(user)
    ).register(user, field(f, 'device').value.trim(), field(f, 'token').value.trim());
    f.reset();
    await enterMain(await session(user));
  });
  onSubmit('enroll-form', async (f) => {
    const user = field(f, 'user').value.trim();
    const s = await session(user);
    const request = await s.requestEnrolment(user, field(f, 'device').value.trim());
    await waitForApproval(s, user, request);
  });
  onSubmit('recover-form', async (f) => {
    const shares = field(f, 'shares')
      .value.split('\n')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const passphrase = field(f, 'passphrase').value;
    if (shares.length === 0 && passphrase === '')
      throw new Error('give the recovery passphrase or the shares');
    const user = field(f, 'user').value.trim();
    const s = await session(user);
    await s.recover(
      user,
      field(f, 'device').value.trim(),
      field(f, 'token').value.trim(),
      shares.length > 0 ? { shares } : { passphrase },
    );
    f.reset();
    notify('Recovered. Your other devices see this one as new; contacts may compare safety numbers again.');
    await enterMain(s);
  });
}

/**
 * A state not opened yet, opened on the first submit of a sign-in form: under a new passkey when the box is
 * ticked, else under a stored key. Once open (even if that submit fails further on) the choice is made.
 */
function lazySession(): (user: string) => Promise<Session> {
  let opened: Promise<Session> | undefined;
  const box = byId<HTMLInputElement>('use-passkey');
  const choice = byId('passkey-choice');
  return (user) => {
    if (opened !== undefined) return opened;
    const passkey = !choice.hidden && box.checked;
    const opening = passkey
      ? Session.open(onWarning, { unlock: 'passkey', userName: user })
      : Session.open(onWarning);
    opened = opening.then(
      (s) => {
        choice.hidden = true;
        return s;
      },
      (err: unknown) => {
        opened = undefined;
        if (passkey && isCode(err, ErrorCode.UNSUPPORTED)) {
          box.checked = false;
          throw new Error(
            'This browser or its authenticator cannot derive a key from a passkey (it lacks the WebAuthn PRF extension), so nothing was saved. Submit again to keep the keys in this browser’s profile.',
          );
        }
        if (passkey && isCode(err, ErrorCode.KEK_MISSING))
          throw new Error(
            'No passkey was created (cancelled or timed out), so nothing was saved. Try again.',
          );
        throw err;
      },
    );
    return opened;
  };
}

/** What the open state holds: the sign-in forms, the enrolment wait, or the panes. */
async function proceed(session: Session): Promise<void> {
  const phase = await session.phase();
  if (phase.kind === 'signed-out') signIn(async () => session, false);
  else if (phase.kind === 'enrolling') await waitForApproval(session, phase.user, phase.request);
  else await enterMain(session);
}

/** A passkey-sealed state: one button, so the authenticator prompt follows a user gesture. */
function unlockScreen(): void {
  showOnly(VIEWS, 'view-unlock');
  const button = byId<HTMLButtonElement>('unlock-button');
  const status = byId('unlock-status');
  button.addEventListener('click', () => {
    status.textContent = 'Confirm with your passkey…';
    void busy(
      button,
      async () => {
        let session: Session;
        try {
          session = await Session.open(onWarning, { unlock: 'passkey' });
        } catch (err) {
          if (isCode(err, ErrorCode.KEK_MISSING)) {
            status.textContent =
              'The passkey was not presented (cancelled, timed out, or not on an authenticator available here). Press Unlock to try again.';
            return;
          }
          status.textContent = '';
          throw err;
        }
        status.textContent = '';
        await proceed(session);
      },
      report,
    );
  });
}

async function start(): Promise<void> {
  const kind = await peekState();
  if (kind === 'passkey') unlockScreen();
  else if (kind === 'new') signIn(lazySession(), true);
  else await proceed(await Session.open(onWarning));
}
start().catch((err: unknown) => {
  showOnly(VIEWS, 'view-loading');
  report(err);
});
