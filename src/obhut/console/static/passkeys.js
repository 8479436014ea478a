// Passkeys: sign-in on the sign-in page, adding one on the account page. The server sends WebAuthn options
// with binary values base64url-encoded and wants the browser's answer encoded the same way (the JSON form of
// WebAuthn Level 3); this script converts both ways and shows the server's message when something fails.
"use strict";

const bytes = (text) => {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0)).buffer;
};

const text = (buffer) => {
  let raw = "";
  for (const b of new Uint8Array(buffer)) raw += String.fromCharCode(b);
  return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
};

const withIds = (list) => (list || []).map((item) => ({ ...item, id: bytes(item.id) }));

const encoded = (credential) => {
  const r = credential.response;
  const response = { clientDataJSON: text(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = text(r.attestationObject);
    response.transports = r.getTransports ? r.getTransports() : [];
  } else {
    response.authenticatorData = text(r.authenticatorData);
    response.signature = text(r.signature);
    if (r.userHandle) response.userHandle = text(r.userHandle);
  }
  return {
    id: credential.id,
    rawId: text(credential.rawId),
    type: credential.type,
    response,
    authenticatorAttachment: credential.authenticatorAttachment || undefined,
    clientExtensionResults: credential.getClientExtensionResults(),
  };
};

const post = async (url, csrf, body) => {
  const reply = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body),
  });
  const answer = await reply.json().catch(() => ({}));
  if (!reply.ok) throw new Error(answer.detail || "The server refused; reload the page and try again.");
  return answer;
};

const show = (error) => {
  const box = document.getElementById("passkey-error");
  box.textContent = error.name === "NotAllowedError"
    ? "The passkey was not used (cancelled, timed out, or none for this site). Try again or sign in another way."
    : error.message;
  box.hidden = false;
};

const signIn = async (button) => {
  const workspace = document.getElementById("workspace").value.trim();
  const csrf = button.dataset.csrf;
  const options = await post("/console/passkeys/options", csrf, { workspace });
  const publicKey = { ...options.public_key, challenge: bytes(options.public_key.challenge) };
  publicKey.allowCredentials = withIds(publicKey.allowCredentials);
  const credential = await navigator.credentials.get({ publicKey });
  const done = await post("/console/passkeys/sign-in", csrf, {
    workspace, challenge_id: options.challenge_id, credential: encoded(credential),
  });
  window.location.assign(done.to);
};

const add = async (form) => {
  const csrf = form.dataset.csrf;
  const options = await post("/console/account/passkeys/options", csrf, {});
  const given = options.public_key;
  const publicKey = {
    ...given,
    challenge: bytes(given.challenge),
    user: { ...given.user, id: bytes(given.user.id) },
    excludeCredentials: withIds(given.excludeCredentials),
  };
  const credential = await navigator.credentials.create({ publicKey });
  const done = await post("/console/account/passkeys", csrf, {
    challenge_id: options.challenge_id, credential: encoded(credential), label: form.elements.label.value,
  });
  window.location.assign(done.to);
};

document.addEventListener("DOMContentLoaded", () => {
  if (!window.PublicKeyCredential) return; // no WebAuthn here: the controls stay hidden
  const button = document.getElementById("passkey-sign-in");
  if (button) {
    button.hidden = false;
    button.addEventListener("click", () => signIn(button).catch(show));
  }
  const form = document.getElementById("passkey-add");
  if (form) {
    form.hidden = false;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      add(form).catch(show);
    });
  }
});
