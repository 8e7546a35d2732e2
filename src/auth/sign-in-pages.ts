// The pages of the people's sign-in: the password form, the one-time code form, the sign-out confirmation and errors. Plain
// HTML with its stylesheet inline (no script: the service's CSP allows none inline), readable by a
// screen reader and usable by keyboard alone.

const escapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => escapes[c]);

const style = `
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f6f8;color:#1b1f24}
main{max-width:26rem;margin:8vh auto;background:#fff;padding:2rem 2.5rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15)}
h1{font-size:1.4rem;margin:0 0 1rem}label{display:block;margin:.8rem 0 .2rem;font-weight:600}
input{width:100%;box-sizing:border-box;padding:.5rem;font:inherit;border:1px solid #6b7580;border-radius:4px}
button{margin-top:1.2rem;padding:.55rem 1.2rem;font:inherit;font-weight:600;border:0;border-radius:4px;background:#0b5cad;color:#fff;cursor:pointer}
button.secondary{background:#e7ebef;color:#1b1f24;margin-left:.5rem}
:focus-visible{outline:3px solid #f5a623;outline-offset:2px}
.error{background:#fdecea;color:#8a1c12;padding:.6rem .8rem;border-radius:4px}
.note{color:#49525c;font-size:.9rem}`;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)} · Second opinion workbench</title><style>${style}</style></head><body><main>${body}</main></body></html>`;
}

/** The password form; `refusal` says why the last attempt was refused (never which of the two was wrong). */
export function signInPage(action: string, username = '', refusal?: string): string {
  return page(
    'Sign in',
    `<h1>Sign in to the second opinion workbench</h1>
${refusal ? `<p class="error" role="alert" id="refusal">${escapeHtml(refusal)}</p>` : ''}
<form method="post" action="${escapeHtml(action)}" autocomplete="on">
<label for="username">User name</label><input id="username" name="username" autocomplete="username" required value="${escapeHtml(username)}"${username ? '' : ' autofocus'}>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required${username ? ' autofocus' : ''}>
<button type="submit">Sign in</button></form>
<p class="note">For reviewers and coordinators of the second opinion service. Every sign-in is recorded.</p>`,
  );
}

/** The one-time code form, after a right password for an account with TOTP; `refusal` says why the last code was refused. */
export function codePage(action: string, refusal?: string): string {
  return page(
    'Sign-in code',
    `<h1>Enter your sign-in code</h1>
${refusal ? `<p class="error" role="alert" id="refusal">${escapeHtml(refusal)}</p>` : ''}
<form method="post" action="${escapeHtml(action)}" autocomplete="off">
<label for="code">The 6-digit code from your authenticator app</label><input id="code" name="code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="one-time-code" required autofocus>
<button type="submit">Sign in</button></form>
<p class="note">Each code works once. If it was refused, wait for the next one.</p>`,
  );
}

/** The sign-out confirmation around oidc-provider's form (`form` is its hidden fields, id op.logoutForm). */
export function signOutPage(form: string): string {
  return page(
    'Sign out',
    `<h1>Sign out of the workbench?</h1>${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Sign out</button>
<button class="secondary" type="submit" form="op.logoutForm">Stay signed in</button>`,
  );
}

export function signedOutPage(workbench: string): string {
  return page('Signed out', `<h1>You are signed out</h1><p><a href="${escapeHtml(workbench)}">Sign in again</a></p>`);
}

export function signInErrorPage(error: string, description?: string): string {
  return page(
    'Sign-in refused',
    `<h1>Sign-in refused</h1><p class="error" role="alert">${escapeHtml(error)}${description ? `: ${escapeHtml(description)}` : ''}</p>`,
  );
}
