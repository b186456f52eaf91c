// The deployments page, live: each deploy event of the project (a preview, a merge to staging,
// a promotion, a rollback; queued -> deploying -> ready / failed with the reason) redraws the
// page's tables from the server, so nobody has to reload. Plain JavaScript, no build step.
(function () {
  "use strict";

  const page = document.querySelector("section.deployments[data-project]");
  if (!page) return;
  let pending = null;

  async function redraw() {
    pending = null;
    const response = await fetch(window.location.href, { credentials: "same-origin" });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    const replacement = fresh.querySelector("section.deployments[data-project]");
    // A rollback confirmation someone has open stays as it is until they decide.
    if (replacement && !page.querySelector("details[open]")) {
      page.innerHTML = replacement.innerHTML;
      page.dataset.redrawn = String(Number(page.dataset.redrawn || 0) + 1);
    }
  }

  function connect(delay) {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(
      scheme + "://" + window.location.host + "/ws/projects/" + page.dataset.project + "/board/"
    );
    socket.onopen = function () { page.dataset.live = "open"; };
    socket.onmessage = function (message) {
      let parsed;
      try { parsed = JSON.parse(message.data); } catch (e) { return; }
      if (parsed.event === "deploy.merging") {
        // Not recorded yet (the merge runs in the request that asked): say so until the
        // release is, when the next event redraws the page.
        const note = page.querySelector("[data-merging]");
        const data = parsed.data || {};
        if (note) {
          note.textContent = "Merging " + (data.task_ids || []).map(function (id) { return "#" + id; }).join(", ") +
            " to " + data.environment + "…";
          note.hidden = false;
        }
      } else if (typeof parsed.event === "string" && parsed.event.indexOf("deploy.") === 0) {
        // A burst of events (one per task of a release) makes one redraw.
        if (!pending) pending = setTimeout(redraw, 150);
      }
    };
    socket.onclose = function () {
      page.dataset.live = "closed";
      setTimeout(function () { connect(Math.min(delay * 2, 15000)); }, delay);
    };
  }
  connect(1000);
})();
