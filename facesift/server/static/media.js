// Video and photo-clustering sections of the facesift page. Self-contained: it adds its own two cards to
// #app and talks to the API with the key the page keeps in sessionStorage; app.js is not touched.
"use strict";

(() => {
  const key = () => sessionStorage.getItem("facesift-key");
  const node = (tag, props = {}, text) => {
    const made = Object.assign(document.createElement(tag), props);
    if (text !== undefined) made.textContent = text;
    return made;
  };

  async function call(method, path, body) {
    const headers = { "X-API-Key": key() };
    if (body && !(body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(body);
    }
    const response = await fetch(path, { method, headers, body });
    const data = response.headers.get("content-type")?.includes("json") ? await response.json() : await response.blob();
    if (!response.ok) {
      const words = { 413: "Too large or too long. ", 415: "Not a file we can read. ", 503: "The service is busy; try again later. " };
      throw new Error((words[response.status] || "") + ((data && data.detail) || `HTTP ${response.status}`));
    }
    return data;
  }

  async function image(path) {
    const blob = await call("GET", path);
    return node("img", { src: URL.createObjectURL(blob), alt: "face" });
  }

  const seconds = (t) => `${t.toFixed(1)} s`;

  // --- video -----------------------------------------------------------------------------------------
  function videoCard() {
    const card = node("section", { className: "card", id: "video" });
    card.innerHTML = `<h2>Who is in this video?</h2>
      <p class="muted">Upload a clip; each face is followed through it and identified once against the gallery chosen above.</p>
      <div class="row">
        <label class="drop small"><input id="video-file" type="file" accept="video/*"><span class="hint">Choose a video</span></label>
        <label>detect every <input id="video-stride" type="number" min="1" max="30" value="3" style="width:4em"> frames</label>
        <button id="video-btn">Analyse</button>
      </div>
      <div id="video-result" class="result" aria-live="polite"></div>`;
    card.querySelector("#video-btn").addEventListener("click", () => analyse(card));
    return card;
  }

  async function analyse(card) {
    const out = card.querySelector("#video-result");
    const file = card.querySelector("#video-file").files[0];
    if (!file) { out.textContent = "Choose a video first."; return; }
    const gallery = document.querySelector("#gallery-select")?.value;
    const body = new FormData();
    body.append("video", file);
    body.append("stride", card.querySelector("#video-stride").value);
    if (gallery) body.append("gallery", gallery);
    out.textContent = "Uploading…";
    try {
      let job = await call("POST", "/v1/video/jobs", body);
      while (job.status === "queued" || job.status === "running") {
        const { frames, total } = job.progress;
        out.textContent = job.status === "queued" ? "Waiting in the queue…" : `Analysing: frame ${frames} of ${total || "?"}`;
        await new Promise((resolve) => setTimeout(resolve, 700));
        job = await call("GET", `/v1/video/jobs/${job.job_id}`);
      }
      if (job.status === "failed") throw new Error(job.error);
      await timeline(out, job);
    } catch (error) {
      out.innerHTML = "";
      out.append(node("p", { className: "error" }, error.message));
    }
  }

  async function timeline(shown, job) {
    const result = job.result;
    const out = node("div");
    const point = result.threshold !== null ? `threshold ${result.threshold.toFixed(3)}` : "no gallery";
    out.append(node("p", { id: "video-summary" },
      `${result.tracks.length} tracks in ${seconds(result.duration)} (${result.summary.speed}x real time; ${point}).`));
    const list = node("ol", { className: "timeline" });
    for (const track of result.tracks) {
      const item = node("li", { className: track.person_id ? "known" : "unknown" });
      try {
        item.append(await image(`/v1/video/jobs/${job.job_id}/tracks/${track.track_id}/thumbnail`));
      } catch { item.append(node("span", { className: "muted" }, "no face image")); }
      const who = track.person_id || (track.decision === "no_usable_face" ? "unknown (no clear face)" : "unknown");
      const similarity = track.similarity !== null ? `, similarity ${track.similarity.toFixed(2)}` : "";
      item.append(node("strong", { className: "who" }, who),
        node("span", { className: "muted" }, ` ${seconds(track.first_seen)} – ${seconds(track.last_seen)}${similarity}`));
      const bar = node("div", { className: "span" });
      bar.style.marginLeft = `${(100 * track.first_seen) / result.duration}%`;
      bar.style.width = `${Math.max(1, (100 * (track.last_seen - track.first_seen)) / result.duration)}%`;
      item.append(bar);
      list.append(item);
    }
    out.append(list);
    shown.replaceChildren(...out.childNodes);
  }

  // --- clusters --------------------------------------------------------------------------------------
  function clusterCard() {
    const card = node("section", { className: "card", id: "clusters" });
    card.innerHTML = `<h2>Group photos by person</h2>
      <p class="muted">Add unlabelled photos to a collection: faces of one person are grouped together. Merge or split
        groups, name them, then enrol the named ones into the gallery chosen above.</p>
      <div class="row">
        <input id="cluster-name" value="photos" pattern="[a-z0-9][a-z0-9_\\-]{0,62}" aria-label="collection name">
        <label class="drop small"><input id="cluster-files" type="file" accept="image/*" multiple><span class="hint">Choose photos</span></label>
        <button id="cluster-add">Add photos</button>
        <button id="cluster-show">Show</button>
        <button id="cluster-enrol">Enrol named groups</button>
      </div>
      <p id="cluster-error" class="error" role="alert"></p>
      <div id="cluster-result" class="result" aria-live="polite"></div>`;
    const name = () => card.querySelector("#cluster-name").value.trim();
    const run = async (work) => {
      card.querySelector("#cluster-error").textContent = "";
      try {
        const view = await work();
        if (view && view.clusters) await showClusters(card, name(), view);
      } catch (error) {
        card.querySelector("#cluster-error").textContent = error.message;
      }
    };
    card.querySelector("#cluster-add").addEventListener("click", () => run(async () => {
      const files = [...card.querySelector("#cluster-files").files];
      if (!files.length) throw new Error("Choose photos first.");
      const body = new FormData();
      for (const file of files) body.append("images", file);
      return call("POST", `/v1/clusters/${name()}/photos`, body);
    }));
    card.querySelector("#cluster-show").addEventListener("click", () => run(() => call("GET", `/v1/clusters/${name()}`)));
    card.querySelector("#cluster-enrol").addEventListener("click", () => run(async () => {
      const gallery = document.querySelector("#gallery-select")?.value;
      if (!gallery) throw new Error("Choose a gallery above first.");
      const done = await call("POST", `/v1/clusters/${name()}/enrol`, { gallery });
      const names = Object.entries(done.enrolled).map(([who, n]) => `${who} (${n} new)`);
      card.querySelector("#cluster-result").prepend(node("p", { id: "cluster-enrolled" }, names.length ? `Enrolled: ${names.join(", ")}` : "No named group to enrol."));
      return null;
    }));
    card.run = run;
    return card;
  }

  async function showClusters(card, name, view) {
    const out = node("div");  // built whole, then shown at once (the faces' images load first)
    out.append(node("p", { id: "cluster-summary" }, `${view.faces} faces in ${view.clusters.length} groups (grouped at similarity ${view.similarity.toFixed(3)}).`));
    const chosen = new Set();
    const merge = node("button", { id: "cluster-merge" }, "Merge selected groups");
    merge.addEventListener("click", () => card.run(() => call("POST", `/v1/clusters/${name}/merge`, { clusters: [...chosen] })));
    out.append(merge);
    for (const cluster of view.clusters) {
      const box = node("div", { className: "cluster" });
      const pick = node("input", { type: "checkbox", title: "select to merge" });
      pick.addEventListener("change", () => (pick.checked ? chosen.add(cluster.cluster_id) : chosen.delete(cluster.cluster_id)));
      const title = cluster.name ? `${cluster.name}${cluster.confirmed ? " ✓" : ""}` : `group ${cluster.cluster_id}`;
      const head = node("div", { className: "row" });
      const label = node("input", { placeholder: "who is this?", value: cluster.name || "" });
      const confirm = node("button", {}, "Confirm");
      confirm.addEventListener("click", () => card.run(() => call("POST", `/v1/clusters/${name}/confirm`, { cluster: cluster.cluster_id, name: label.value })));
      const split = node("button", {}, "Split");
      split.addEventListener("click", () => card.run(() => call("POST", `/v1/clusters/${name}/split`, { cluster: cluster.cluster_id })));
      head.append(pick, node("strong", {}, `${title} · ${cluster.size} faces`), label, confirm);
      if (cluster.size > 1) head.append(split);
      const faces = node("div", { className: "faces" });
      for (const face of cluster.face_ids.slice(0, 12)) {
        try { faces.append(await image(`/v1/clusters/${name}/thumbnail?face=${encodeURIComponent(face)}`)); } catch { /* a face without a thumbnail */ }
      }
      box.append(head, faces);
      out.append(box);
    }
    card.querySelector("#cluster-result").replaceChildren(...out.childNodes);
  }

  function install() {
    const app = document.querySelector("#app");
    if (!app || document.querySelector("#video")) return;
    app.append(videoCard(), clusterCard());
    const style = node("style");
    style.textContent = `ol.timeline { list-style: none; padding: 0; } ol.timeline li { border-bottom: 1px solid var(--line); padding: .4rem 0; }
      ol.timeline img, .cluster img { width: 56px; height: 56px; object-fit: cover; border-radius: 6px; vertical-align: middle; margin-right: .5rem; }
      ol.timeline .span { height: 6px; background: var(--muted); border-radius: 3px; margin-top: .3rem; }
      ol.timeline li.known .span { background: var(--ok); } .cluster { border: 1px solid var(--line); border-radius: 8px; padding: .5rem; margin: .5rem 0; }
      .cluster .faces { display: flex; flex-wrap: wrap; gap: .3rem; }`;
    document.head.append(style);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", install);
  else install();
})();
