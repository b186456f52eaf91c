// The live board: drag and drop, "move to" menus, filters, and live updates over WebSocket.
// Plain JavaScript, no build step. Every change goes through the board's own views, which call
// the task services; the board redraws only from what the server answers or broadcasts.
(function () {
  "use strict";

  const root = document.getElementById("board-root");
  if (!root) return;
  const columnsBox = document.getElementById("board-columns");
  // The search the columns were last drawn for (filterQuery()); "" for the whole board.
  let searched = "";
  const messageBox = document.getElementById("board-message");
  const liveStatus = document.getElementById("live-status");
  const pageSize = Number(root.dataset.pageSize);  // cards a column shows before "show more"

  // --- helpers -------------------------------------------------------------------------------

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function urlFor(template, id) {
    return template.replace("/0/", "/" + encodeURIComponent(id) + "/");
  }

  let messageTimer = null;
  function showMessage(text, kind) {
    messageBox.textContent = text;
    messageBox.className = "board-message " + (kind || "error");
    messageBox.hidden = false;
    clearTimeout(messageTimer);
    messageTimer = setTimeout(function () { messageBox.hidden = true; }, 10000);
  }

  async function postJSON(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), "Accept": "application/json" },
      body: JSON.stringify(body),
    });
    let data = {};
    try { data = await response.json(); } catch (e) { data = { detail: response.status + " " + response.statusText }; }
    return { ok: response.ok, status: response.status, data: data };
  }

  function cardsBox(state) {
    return columnsBox.querySelector('.cards[data-state="' + state + '"]');
  }

  // --- drawing what the server answered ------------------------------------------------------

  function updateCounts(counts) {
    if (!counts) return;
    columnsBox.querySelectorAll("section.column").forEach(function (column) {
      const state = column.dataset.state;
      if (!(state in counts)) return;
      const n = counts[state];
      column.querySelector(".count").textContent = n;
      const limit = column.dataset.limit === "" ? null : Number(column.dataset.limit);
      const over = limit !== null && n > limit;
      column.classList.toggle("over-limit", over);
      column.classList.toggle("at-limit", limit !== null && n >= limit);
      column.querySelector(".over-flag").hidden = !over;
    });
    updateMore();
  }

  // A column shows its first page; "show more" says how many are not loaded yet.
  function updateMore() {
    columnsBox.querySelectorAll("section.column").forEach(function (column) {
      const button = column.querySelector(".show-more");
      if (!button) return;
      // While the board is searched, the rest is of the cards that match.
      const matches = column.querySelector(".matches");
      const total = Number(matches ? matches.dataset.count : column.querySelector(".count").textContent);
      const loaded = column.querySelectorAll(".cards > .card").length;
      const rest = Math.max(0, total - loaded);
      button.querySelector(".more-count").textContent = rest;
      button.hidden = rest === 0;
    });
  }

  async function showMore(button) {
    const state = button.dataset.state;
    const box = cardsBox(state);
    // The page after the column's last loaded card (cards moved in or out above it meanwhile
    // do not shift it); the offset is for when that task has gone since.
    const last = box.lastElementChild;
    const url = root.dataset.moreUrl.replace("/backlog/", "/" + state + "/") + "?offset=" + box.children.length +
      (last && last.dataset.taskId ? "&after=" + encodeURIComponent(last.dataset.taskId) : "") +
      (searched ? "&" + searched : "");
    button.disabled = true;
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) { showMessage("Could not load more cards (" + response.status + ")."); return; }
      const holder = document.createElement("div");
      holder.innerHTML = await response.text();
      Array.from(holder.children).forEach(function (card) {
        // A card a live update already drew stays where it is.
        if (!document.getElementById(card.id)) box.appendChild(card);
      });
      updateMore();
      applyFilters();
    } finally {
      button.disabled = false;
    }
  }

  // `total`, when the server said it, is how many tasks the column holds with this card in it.
  function placeCard(card, state, total) {
    const box = cardsBox(state);
    if (!box) return;
    const key = card.dataset.sort;
    const others = Array.from(box.children).filter(function (other) { return other !== card; });
    const after = others.find(function (other) { return other.dataset.sort > key; });
    // Past the last loaded card of a paged column: it arrives with "show more" instead. The
    // drawn count cannot say whether the column is paged when cards enter it together (the
    // first card's answer counts them all), so the server's total decides when there is one.
    const more = box.parentElement.querySelector(".show-more");
    const paged = total === undefined
      ? Boolean(more && !more.hidden)
      : total > pageSize && total - 1 > others.length;
    if (!after && paged) return;
    box.insertBefore(card, after || null);
  }

  function applyCard(payload) {
    if ("staging_release" in payload) root.dataset.stagingRelease = payload.staging_release || "";
    const old = document.getElementById("task-" + payload.id);
    if (!payload.state) {
      if (old) old.remove();
      updateCounts(payload.counts);
      return;
    }
    const holder = document.createElement("div");
    holder.innerHTML = payload.html.trim();
    const card = holder.firstElementChild;
    const wasChecked = old && old.querySelector(".select-task:checked");
    if (old) old.remove();
    placeCard(card, payload.state, payload.counts ? payload.counts[payload.state] : undefined);
    updateCounts(payload.counts);
    if (wasChecked && card.querySelector(".select-task")) card.querySelector(".select-task").checked = true;
    applyFilters();
  }

  // Only the newest answer for a card is drawn, so out-of-order fetches cannot undo a move.
  const cardSeq = {};
  function showMerging(id, environment) {
    const badges = columnsBox.querySelector("#task-" + id + " .badges");
    if (!badges || badges.querySelector(".deploy-merging")) return;
    const badge = document.createElement("span");
    badge.className = "badge deploy deploy-merging release";
    badge.title = environment + " release";
    badge.textContent = environment + " merging";
    badges.appendChild(badge);
  }

  async function refreshCard(id) {
    const seq = (cardSeq[id] = (cardSeq[id] || 0) + 1);
    try {
      const response = await fetch(urlFor(root.dataset.cardUrl, id), { credentials: "same-origin" });
      if (!response.ok) return;
      const payload = await response.json();
      if (seq === cardSeq[id]) applyCard(payload);
    } catch (e) {
      /* the next event or the resync on reconnect catches up */
    }
  }

  async function resync() {
    try {
      const asked = searched;
      const response = await fetch(root.dataset.columnsUrl + (asked ? "&" + asked : ""), { credentials: "same-origin" });
      if (asked !== searched) return; // the search changed meanwhile: its own fetch draws it
      if (!response.ok) return;
      const checked = Array.from(columnsBox.querySelectorAll(".select-task:checked")).map(function (i) { return i.value; });
      columnsBox.innerHTML = await response.text();
      checked.forEach(function (id) {
        const box = columnsBox.querySelector('.select-task[value="' + id + '"]');
        if (box) box.checked = true;
      });
      applyFilters();
      root.dataset.synced = String(Date.now());
    } catch (e) {
      /* tried again on the next reconnect */
    }
  }

  // --- moving cards --------------------------------------------------------------------------

  // Starting a task by hand names the agent that holds it (a task in progress has a holder).
  function askForAgent(card) {
    const dialog = document.getElementById("start-dialog");
    if (!dialog || typeof dialog.showModal !== "function") return Promise.resolve(null);
    dialog.querySelector(".start-task-id").textContent = "#" + card.dataset.taskId;
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function onClose() {
        dialog.removeEventListener("close", onClose);
        const select = document.getElementById("start-agent");
        resolve(dialog.returnValue === "start" && select ? Number(select.value) : null);
      });
      dialog.returnValue = "";
      dialog.showModal();
    });
  }

  async function moveCard(card, toState) {
    const fromState = card.dataset.state;
    if (!toState || toState === fromState) return;
    const body = { to_state: toState };
    if (fromState === "backlog" && toState === "in_progress") {
      const agent = await askForAgent(card);
      if (agent === null) return; // cancelled: nothing moves
      body.agent = agent;
    }
    const home = { parent: card.parentElement, next: card.nextElementSibling };
    placeCard(card, toState); // optimistic; snaps back if the service refuses
    card.classList.add("pending");
    let answer;
    try {
      answer = await postJSON(urlFor(root.dataset.moveUrl, card.dataset.taskId), body);
    } catch (e) {
      answer = { ok: false, data: { detail: "The server could not be reached; the card was not moved." } };
    }
    card.classList.remove("pending");
    if (answer.ok) {
      applyCard(answer.data);
      return;
    }
    if (home.parent) home.parent.insertBefore(card, home.next && home.next.parentElement === home.parent ? home.next : null);
    card.classList.add("snapped-back");
    setTimeout(function () { card.classList.remove("snapped-back"); }, 1500);
    showMessage(answer.data.detail || "The move was refused.");
    if (answer.data.card) applyCard(answer.data.card);
  }

  let dragged = null;
  columnsBox.addEventListener("dragstart", function (event) {
    const card = event.target.closest && event.target.closest(".card");
    if (!card) return;
    dragged = card;
    card.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.dataset.taskId);
  });
  columnsBox.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("dragging");
    columnsBox.querySelectorAll(".drop-target").forEach(function (c) { c.classList.remove("drop-target"); });
  });
  columnsBox.addEventListener("dragover", function (event) {
    const column = event.target.closest && event.target.closest("section.column");
    if (!column || !dragged) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    columnsBox.querySelectorAll(".drop-target").forEach(function (c) { if (c !== column) c.classList.remove("drop-target"); });
    column.classList.add("drop-target");
  });
  columnsBox.addEventListener("drop", function (event) {
    const column = event.target.closest && event.target.closest("section.column");
    if (!column || !dragged) return;
    event.preventDefault();
    column.classList.remove("drop-target");
    const card = dragged;
    dragged = null;
    moveCard(card, column.dataset.state);
  });

  columnsBox.addEventListener("click", function (event) {
    const moreButton = event.target.closest(".show-more");
    if (moreButton) { showMore(moreButton); return; }
    const button = event.target.closest("button");
    if (!button) return;
    if (button.classList.contains("move-to")) {
      const card = button.closest(".card");
      const menu = button.closest("details");
      if (menu) menu.open = false;
      moveCard(card, button.dataset.to).then(function () {
        const moved = document.getElementById(card.id);
        if (moved) moved.focus();
      });
    } else if (button.classList.contains("answer-option")) {
      answerQuestion(button.closest(".card"), button.dataset.answer);
    } else if (button.classList.contains("merge-to-staging")) {
      mergeToStaging();
    } else if (button.classList.contains("promote")) {
      promote();
    }
  });
  columnsBox.addEventListener("submit", function (event) {
    const form = event.target.closest("form.answer-free");
    if (!form) return;
    event.preventDefault();
    const text = form.elements.answer.value.trim();
    if (text) answerQuestion(form.closest(".card"), text);
  });

  // One click answers the question the card shows; the agent's check_response wakes, and the
  // card redraws from the task.* event (or from this answer's refresh when the socket is down).
  async function answerQuestion(card, text) {
    const box = card.querySelector(".card-question");
    if (!box) return;
    const url = root.dataset.answerUrl
      .replace("{task}", encodeURIComponent(card.dataset.taskId))
      .replace("{question}", encodeURIComponent(box.dataset.questionId));
    box.querySelectorAll("button, input").forEach(function (el) { el.disabled = true; });
    const answer = await postJSON(url, { answer: text });
    if (!answer.ok) {
      box.querySelectorAll("button, input").forEach(function (el) { el.disabled = false; });
      showMessage(answer.data.detail || "The answer was refused.");
      return;
    }
    showMessage("Answered: " + text, "info");
    refreshCard(card.dataset.taskId);
  }

  columnsBox.addEventListener("keydown", function (event) {
    // Escape closes an open "move to" menu and gives focus back to its card.
    if (event.key !== "Escape") return;
    const menu = event.target.closest("details[open]");
    if (menu) {
      menu.open = false;
      menu.closest(".card").focus();
    }
  });

  // --- releases (endpoints of the REST API) --------------------------------------------------

  async function mergeToStaging() {
    const ids = Array.from(columnsBox.querySelectorAll('.cards[data-state="approved"] .select-task:checked'))
      .map(function (box) { return Number(box.value); });
    if (!ids.length) {
      showMessage("Tick the approved tasks to merge first.");
      return;
    }
    const answer = await postJSON(root.dataset.mergeUrl, { task_ids: ids });
    if (!answer.ok) return showMessage(answer.data.detail || "Merge to staging was refused.");
    if (answer.data && answer.data.id) root.dataset.stagingRelease = answer.data.id;
    showMessage("Merge to staging started for " + ids.length + " task(s).", "info");
  }

  async function promote() {
    const release = root.dataset.stagingRelease;
    if (!release) return showMessage("There is no staging release to promote yet.");
    const answer = await postJSON(urlFor(root.dataset.promoteUrl, release), {});
    if (!answer.ok) return showMessage(answer.data.detail || "Promotion was refused.");
    showMessage("Release " + release + " is being promoted to production.", "info");
  }

  // --- filters (no reload) -------------------------------------------------------------------

  const textFilter = document.getElementById("filter-text");
  const agentFilter = document.getElementById("filter-agent");
  const priorityFilter = document.getElementById("filter-priority");
  const labelFilter = document.getElementById("filter-label");
  // The label choices are the labels of the cards on the board (no query of their own).
  const knownLabels = {}; // every label seen on a card here, kept while a search hides some
  function refreshLabelOptions() {
    columnsBox.querySelectorAll(".card[data-labels]").forEach(function (card) {
      card.dataset.labels.split(",").forEach(function (label) { if (label) knownLabels[label] = true; });
    });
    const labels = Object.keys(knownLabels).sort();
    const chosen = labelFilter.value;
    if (chosen && !knownLabels[chosen]) labels.push(chosen);
    const have = Array.from(labelFilter.options).slice(1).map(function (o) { return o.value; });
    if (have.join(",") === labels.join(",")) return;
    labelFilter.length = 1;
    labels.forEach(function (label) { labelFilter.add(new Option(label, label)); });
    labelFilter.value = chosen;
  }
  function applyFilters() {
    refreshLabelOptions();
    const text = textFilter.value.trim().toLowerCase();
    const agent = agentFilter.value;
    const priority = priorityFilter.value;
    const label = labelFilter.value;
    columnsBox.querySelectorAll(".card").forEach(function (card) {
      const show =
        (!text || card.dataset.title.indexOf(text) !== -1) &&
        (!agent || card.dataset.agent === agent) &&
        (!priority || card.dataset.priority === priority) &&
        (!label || (card.dataset.labels || "").indexOf("," + label + ",") !== -1);
      card.hidden = !show;
    });
  }
  // The loaded cards are filtered at once; the database is asked too (a moment after the last
  // keystroke), so that cards beyond the loaded pages are found.
  function filterQuery() {
    const params = new URLSearchParams();
    const text = textFilter.value.trim();
    if (text) params.set("q", text);
    if (agentFilter.value) params.set("agent", agentFilter.value);
    if (priorityFilter.value) params.set("priority", priorityFilter.value);
    if (labelFilter.value) params.set("label", labelFilter.value);
    return params.toString();
  }
  let searchTimer = null;
  function searchSoon() {
    applyFilters();
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () {
      const query = filterQuery();
      if (query === searched) return;
      searched = query;
      root.dataset.searched = query;
      resync();
    }, 250);
  }
  [textFilter, agentFilter, priorityFilter, labelFilter].forEach(function (input) {
    input.addEventListener("input", searchSoon);
    input.addEventListener("change", searchSoon);
  });
  refreshLabelOptions();

  // --- live updates --------------------------------------------------------------------------

  function taskIdOf(data) {
    if (!data) return null;
    return data.task_id || (typeof data.task === "number" ? data.task : null) || data.id || null;
  }

  function onEvent(event, data) {
    if (event.indexOf("task.") === 0) {
      if (data && data.id) refreshCard(data.id);
    } else if (event === "agent.status") {
      columnsBox.querySelectorAll('.agent[data-agent-id="' + data.id + '"] .agent-status').forEach(function (el) {
        el.textContent = data.status;
        el.className = "agent-status s-" + data.status;
      });
    } else if (event === "deploy.merging") {
      // Nothing is recorded while the forge merges (it runs inside the request that asked):
      // the cards say so until the release's next step redraws them.
      (data.task_ids || []).forEach(function (taskId) { showMerging(taskId, data.environment); });
    } else if (event.indexOf("deploy.") === 0) {
      const id = taskIdOf(data);
      // A deploy of a release (no task) may change the staging release the Promote button uses;
      // its tasks' cards show how it goes (deploying, then live or failed with the reason).
      refreshCard(id || 0);
      (data.task_ids || []).forEach(function (taskId) { if (taskId !== id) refreshCard(taskId); });
      if (event === "deploy.failed" && data && data.error) showMessage("Deploy failed: " + data.error);
    }
  }

  const PING_EVERY_MS = 5 * 60 * 1000;
  let socket = null;
  let keepAlive = null;
  let attempts = 0;
  let everOpened = false;
  function setLive(state, label) {
    root.dataset.live = state;
    liveStatus.textContent = label;
    liveStatus.className = "live-status " + state;
  }
  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + root.dataset.wsPath);
    socket.onopen = function () {
      const reconnect = everOpened;
      everOpened = true;
      attempts = 0;
      setLive("open", "live");
      // Events sent while we were away are gone: redraw the board from the database.
      if (reconnect) resync();
      // The server renews the board's group membership on each ping (groups expire).
      keepAlive = setInterval(function () {
        if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
      }, PING_EVERY_MS);
    };
    socket.onmessage = function (message) {
      let parsed;
      try { parsed = JSON.parse(message.data); } catch (e) { return; }
      onEvent(parsed.event, parsed.data || {});
    };
    socket.onclose = function () {
      clearInterval(keepAlive);
      // Exponential backoff with jitter, at most 15 s between attempts.
      const delay = Math.min(15000, 500 * Math.pow(2, attempts)) * (0.75 + Math.random() / 2);
      attempts += 1;
      setLive("closed", "offline, reconnecting…");
      setTimeout(connect, delay);
    };
  }
  connect();

  // --- keyboard: `n` new task, `/` search (not while typing somewhere) -------------------------

  const newTaskLink = document.getElementById("new-task");
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target.closest("input, textarea, select, [contenteditable]")) return;
    if (event.key === "/") {
      event.preventDefault();
      textFilter.focus();
      textFilter.select();
    } else if (event.key === "n" && newTaskLink) {
      event.preventDefault();
      window.location.assign(newTaskLink.href);
    }
  });
})();
