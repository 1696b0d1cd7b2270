// The dashboard shell: every request carries the session token from page memory as a header.
// No cookies are used, so the app works in a cross-site frame with third-party cookies blocked.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="smbc-session"]');
  var token = meta ? meta.getAttribute("content") : "";
  var expiresAt = meta ? Number(meta.getAttribute("data-expires")) * 1000 : 0;
  if (meta) meta.parentNode.removeChild(meta); // keep the token in memory only
  var content = document.getElementById("tab-content");
  var ended = document.getElementById("session-ended");
  var sessionOver = false;

  function endSession() {
    sessionOver = true;
    if (ended) ended.hidden = false;
    document.querySelectorAll("#tab-content button, #tab-content input, #tab-content select, #tab-content textarea")
      .forEach(function (el) { el.disabled = true; });
  }
  if (expiresAt) {
    var remaining = expiresAt - Date.now();
    if (remaining <= 0) endSession();
    else window.setTimeout(endSession, Math.min(remaining, 2147483647));
  }

  function banner(kind, text) {
    var div = document.createElement("div");
    div.className = "banner banner--" + kind;
    div.setAttribute("role", "alert");
    div.textContent = text;
    return div;
  }

  function showProblem(target, text) {
    target.replaceChildren(banner("danger", text));
    target.removeAttribute("aria-busy");
  }

  function request(method, url, body) {
    var headers = { "Authorization": "Bearer " + token, "Accept": "text/html" };
    if (body !== undefined) headers["Content-Type"] = "application/x-www-form-urlencoded";
    return fetch(url, { method: method, headers: headers, body: body, credentials: "omit" });
  }

  // Fetch url and put the answer into target; 200 and 422 carry HTML to show.
  function swap(target, method, url, body) {
    if (sessionOver) { endSession(); return Promise.resolve(); }
    target.setAttribute("aria-busy", "true");
    return request(method, url, body).then(function (response) {
      if (response.status === 401) { endSession(); target.removeAttribute("aria-busy"); return; }
      return response.text().then(function (html) {
        if (response.ok || response.status === 422) {
          target.innerHTML = html;
          target.removeAttribute("aria-busy");
          scheduleRefresh(target);
        } else if (response.status === 404) {
          showProblem(target, "This section is not available yet in this version of the app.");
        } else if (response.status === 403) {
          var detail = "";
          try { detail = String(JSON.parse(html).detail || ""); } catch (e) { detail = ""; }
          showProblem(target, detail || "Only the store owner and the managers can do this.");
        } else {
          showProblem(target, "Something went wrong (error " + response.status + "). Please try again.");
        }
      });
    }).catch(function () {
      showProblem(target, "The app could not be reached. Check your connection and try again.");
    });
  }

  // <div data-refresh="2000" data-refresh-url="/app/..."> reloads itself (outerHTML) every 2 s while it
  // is on the page; the fresh copy decides whether to go on (e.g. only while an export runs).
  function scheduleRefresh(root) {
    root.querySelectorAll("[data-refresh][data-refresh-url]").forEach(function (el) {
      if (el.smbcRefresh) return;
      el.smbcRefresh = window.setTimeout(function () {
        if (sessionOver || !document.body.contains(el)) return;
        request("GET", el.getAttribute("data-refresh-url")).then(function (response) {
          if (response.status === 401) { endSession(); return; }
          if (!response.ok) { el.smbcRefresh = null; scheduleRefresh(el.parentNode || document); return; }
          return response.text().then(function (html) {
            if (!document.body.contains(el)) return;
            var holder = document.createElement("div");
            holder.innerHTML = html;
            var fresh = holder.firstElementChild;
            if (!fresh) return;
            var parent = el.parentNode;
            el.replaceWith(fresh);
            scheduleRefresh(parent);
          });
        }).catch(function () { el.smbcRefresh = null; });
      }, Number(el.getAttribute("data-refresh")) || 2000);
    });
  }

  function selectTab(link) {
    document.querySelectorAll("[data-tab]").forEach(function (el) {
      var active = el === link;
      el.classList.toggle("is-active", active);
      el.setAttribute("aria-selected", active ? "true" : "false");
    });
    return swap(content, "GET", link.getAttribute("data-tab"));
  }

  function targetOf(el) {
    var name = el.getAttribute("data-target");
    return (name && document.querySelector(name)) || content;
  }

  // <button data-copy="#input-id">: copy that input's value (Account Settings' callback URLs).
  function copyField(button) {
    var field = document.querySelector(button.getAttribute("data-copy"));
    if (!field) return;
    function done() {
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = "Copy"; }, 2000);
    }
    function fallback() { field.select(); try { document.execCommand("copy"); done(); } catch (e) {} }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(field.value).then(done, fallback);
    } else {
      fallback();
    }
  }

  document.addEventListener("click", function (event) {
    var copy = event.target.closest("[data-copy]");
    if (copy) { event.preventDefault(); copyField(copy); return; }
    var link = event.target.closest("[data-tab]");
    if (link) { event.preventDefault(); selectTab(link); return; }
    var button = event.target.closest("[data-smbc-post]");
    if (button) {
      event.preventDefault();
      button.disabled = true;
      swap(targetOf(button), "POST", button.getAttribute("data-smbc-post"), "").then(function () {
        button.disabled = false;
      });
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-smbc-form]");
    if (!form) return;
    event.preventDefault();
    var body = new URLSearchParams(new FormData(form)).toString();
    var method = (form.getAttribute("method") || "post").toUpperCase();
    if (method === "GET") swap(targetOf(form), "GET", form.getAttribute("action") + "?" + body);
    else swap(targetOf(form), method, form.getAttribute("action"), body);
  });

  var first = content && content.getAttribute("data-initial-tab");
  var firstLink = first && document.querySelector('[data-tab="' + first + '"]');
  if (firstLink) selectTab(firstLink);
})();
