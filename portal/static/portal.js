// The portal's one script. It calls the JSON API with fetch and shows a new
// key once, in a dialog; when the dialog closes the key is removed from the
// DOM and the page reloads, so the key is never in the page source, a URL,
// or storage.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  // api calls the portal's JSON API (relative to the page, so the portal
  // works under any prefix) and returns the decoded body, or throws the
  // problem document.
  async function api(method, path, body) {
    const resp = await fetch(path, {
      method: method,
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      referrerPolicy: "no-referrer",
    });
    let data = null;
    try {
      data = await resp.json();
    } catch (e) {
      data = null;
    }
    if (!resp.ok) {
      throw data || { status: resp.status, detail: "The request failed (" + resp.status + ")." };
    }
    return data;
  }

  function showError(el, problem) {
    el.textContent = (problem && problem.detail) || "Something went wrong.";
    el.hidden = false;
  }

  function clearError(el) {
    el.textContent = "";
    el.hidden = true;
  }

  // Fields of the create form by the API member they hold.
  const createFields = {
    name: "create-name",
    scopes: "create-scopes",
    expires_in: "create-expires",
    expires_at: "create-expires",
    allowed_ips: "create-ips",
    prefix: "create-prefix",
  };

  function markInvalid(field) {
    for (const id of Object.values(createFields)) {
      const el = $(id);
      if (el) el.removeAttribute("aria-invalid");
    }
    const el = field && createFields[field] ? $(createFields[field]) : null;
    if (el) {
      el.setAttribute("aria-invalid", "true");
      if (el.focus) el.focus();
    }
  }

  // --- the one-time key dialog ---

  const tokenDialog = $("token-dialog");
  let tokenStored = false;

  function showToken(token, note) {
    const box = $("token-box");
    box.replaceChildren();
    const code = document.createElement("code");
    code.id = "token-value";
    code.textContent = token;
    box.appendChild(code);
    $("token-note").textContent = note || "";
    $("token-copied").textContent = "";
    $("token-stored").checked = false;
    $("token-close").disabled = true;
    tokenStored = false;
    tokenDialog.showModal();
    $("token-copy").focus();
  }

  $("token-copy").addEventListener("click", async () => {
    const code = $("token-value");
    if (!code) return;
    try {
      await navigator.clipboard.writeText(code.textContent);
      $("token-copied").textContent = "Copied.";
    } catch (e) {
      const range = document.createRange();
      range.selectNodeContents(code);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      $("token-copied").textContent = "Selected: press Ctrl+C (or ⌘C) to copy.";
    }
  });

  $("token-stored").addEventListener("change", (e) => {
    tokenStored = e.target.checked;
    $("token-close").disabled = !tokenStored;
  });

  $("token-close").addEventListener("click", () => {
    if (tokenStored) tokenDialog.close();
  });

  // Escape closes the dialog only once the key is stored.
  tokenDialog.addEventListener("cancel", (e) => {
    if (!tokenStored) e.preventDefault();
  });

  tokenDialog.addEventListener("close", () => {
    $("token-box").replaceChildren();
    $("token-note").textContent = "";
    window.getSelection().removeAllRanges();
    location.reload();
  });

  // --- create ---

  const form = $("create-form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const err = $("create-error");
    clearError(err);
    const body = {
      name: $("create-name").value,
      scopes: Array.from(form.querySelectorAll('input[name="scopes"]:checked'), (el) => el.value),
      expires_in: $("create-expires").value,
      allowed_ips: $("create-ips").value.split(/[\s,]+/).filter((s) => s !== ""),
    };
    if ($("create-prefix")) body.prefix = $("create-prefix").value;
    const submit = $("create-submit");
    submit.disabled = true;
    try {
      const data = await api("POST", "api/keys", body);
      form.reset();
      showToken(data.token, "Key " + data.key.masked + " (" + data.key.name + ")" +
        (data.key.expires_at ? " expires " + when(data.key.expires_at) + "." : " does not expire."));
    } catch (problem) {
      showError(err, problem);
      markInvalid(problem && problem.field);
    } finally {
      submit.disabled = false;
    }
  });

  // --- rotate and revoke, each confirmed in a dialog that names the key ---

  const confirmDialog = $("confirm-dialog");
  let pending = null;

  function when(iso) {
    const d = new Date(iso);
    return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  // durationMs reads the grace values the page offers: "3d", "1h0m0s", "0s".
  function durationMs(s) {
    let m = /^(\d+)d$/.exec(s);
    if (m) return Number(m[1]) * 86400000;
    let ms = 0;
    const re = /(\d+(?:\.\d+)?)(h|m|s)/g;
    const unit = { h: 3600000, m: 60000, s: 1000 };
    while ((m = re.exec(s)) !== null) ms += Number(m[1]) * unit[m[2]];
    return ms;
  }

  function updateGraceEnd() {
    const ms = durationMs($("grace").value);
    $("grace-end").textContent = ms === 0
      ? "The old key stops working as soon as you rotate."
      : "The old key stops working at " + when(new Date(Date.now() + ms).toISOString()) + ".";
  }

  function openConfirm(kind, item) {
    const name = item.dataset.name;
    const masked = item.dataset.masked;
    pending = { kind: kind, id: item.dataset.id };
    clearError($("confirm-error"));
    if (kind === "revoke") {
      $("confirm-title").textContent = "Revoke “" + name + "”?";
      $("confirm-text").textContent = "Key " + masked + " stops working at once, everywhere. This cannot be undone.";
      $("grace-field").hidden = true;
      $("confirm-ok").textContent = "Revoke " + name;
      $("confirm-ok").className = "danger";
    } else {
      $("confirm-title").textContent = "Rotate “" + name + "”?";
      $("confirm-text").textContent = "A new key replaces " + masked + ", with the same scopes and settings.";
      $("grace-field").hidden = false;
      updateGraceEnd();
      $("confirm-ok").textContent = "Rotate " + name;
      $("confirm-ok").className = "";
    }
    confirmDialog.showModal();
    $("confirm-cancel").focus();
  }

  $("grace").addEventListener("change", updateGraceEnd);
  $("confirm-cancel").addEventListener("click", () => confirmDialog.close());

  $("confirm-ok").addEventListener("click", async () => {
    if (!pending) return;
    const p = pending;
    $("confirm-ok").disabled = true;
    try {
      if (p.kind === "revoke") {
        await api("POST", "api/keys/" + encodeURIComponent(p.id) + "/revoke", {});
        pending = null;
        confirmDialog.close();
        location.reload();
        return;
      }
      const data = await api("POST", "api/keys/" + encodeURIComponent(p.id) + "/rotate", { grace: $("grace").value });
      pending = null;
      confirmDialog.close();
      const old = data.old_key;
      let note = "The old key " + (old ? old.masked : "") + " ";
      if (old && old.status === "revoked") note += "has stopped working.";
      else if (old && old.expires_at) note += "stops working at " + when(old.expires_at) + ".";
      else note += "keeps working for the grace period.";
      showToken(data.token, note);
    } catch (problem) {
      showError($("confirm-error"), problem);
    } finally {
      $("confirm-ok").disabled = false;
    }
  });

  // --- edit: the name and the allowed addresses ---

  const editDialog = $("edit-dialog");
  let editing = null;

  function openEdit(item) {
    editing = item.dataset.id;
    clearError($("edit-error"));
    $("edit-masked").textContent = item.dataset.masked;
    $("edit-name").value = item.dataset.name;
    $("edit-ips").value = item.dataset.ips;
    editDialog.showModal();
    $("edit-name").focus();
  }

  $("edit-cancel").addEventListener("click", () => editDialog.close());

  $("edit-save").addEventListener("click", async () => {
    if (!editing) return;
    $("edit-save").disabled = true;
    try {
      await api("PATCH", "api/keys/" + encodeURIComponent(editing), {
        name: $("edit-name").value,
        allowed_ips: $("edit-ips").value.split(/[\s,]+/).filter((s) => s !== ""),
      });
      editing = null;
      editDialog.close();
      location.reload();
    } catch (problem) {
      showError($("edit-error"), problem);
      const el = problem && problem.field === "name" ? $("edit-name") : problem && problem.field === "allowed_ips" ? $("edit-ips") : null;
      if (el) {
        el.setAttribute("aria-invalid", "true");
        el.focus();
      }
    } finally {
      $("edit-save").disabled = false;
    }
  });

  for (const button of document.querySelectorAll("button.edit")) {
    button.addEventListener("click", () => openEdit(button.closest("li.key")));
  }

  for (const button of document.querySelectorAll("button.rotate, button.revoke")) {
    button.addEventListener("click", () => {
      openConfirm(button.classList.contains("revoke") ? "revoke" : "rotate", button.closest("li.key"));
    });
  }
})();
