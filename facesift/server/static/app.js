// The facesift page: plain JS, no libraries. The API key lives in this tab's sessionStorage only.
// Each feature is one <section class="card"> in index.html with its code in one block below; shared helpers first.
"use strict";

const $ = (selector) => document.querySelector(selector);
const state = { key: sessionStorage.getItem("facesift-key"), me: null, galleries: [] };

// The operating point: 1:1 calls (compare, profile check) send it as false_match_rate; the 1:N call (search) sends
// it in the field named here (the `openset` branch adds `fpir` to the 1:N endpoints: switching is this line).
const ONE_TO_ONE_RATE_FIELD = "false_match_rate";
const ONE_TO_MANY_RATE_FIELD = "fpir";

// Person ids: the gallery's own rule (facesift.gallery.PERSON_ID_RULE), checked here before anything is sent.
const PERSON_ID_MAX = 256;
const PERSON_ID_RULE = `A person id has 1 to ${PERSON_ID_MAX} characters: letters, digits, spaces and punctuation, but no / or \\ and no control characters.`;

function personIdProblem(id) {
  if (!id) return "Enter a person id. " + PERSON_ID_RULE;
  // eslint-disable-next-line no-control-regex
  if (id.length > PERSON_ID_MAX || /[/\\\u0000-\u001f\u007f]/.test(id)) return `The person id "${id.slice(0, 40)}" is not allowed. ${PERSON_ID_RULE}`;
  return "";
}

// --- talking to the API -----------------------------------------------------------------------------
async function api(method, path, body) {
  const headers = { "X-API-Key": state.key };
  if (body && !(body instanceof FormData)) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers, body });
  if (response.status === 204) return null;
  const data = response.headers.get("content-type")?.includes("json") ? await response.json() : await response.blob();
  if (!response.ok) {
    const error = new Error(plainError(response.status, data));
    error.status = response.status;
    if (response.status === 401) signOut("Your key was refused (wrong or revoked). Sign in again.");
    throw error;
  }
  return data;
}

// What went wrong, in a user's words: never field names or MIME types.
const PHOTO_PROBLEM = "That file is not a photo we can read: use a JPEG, PNG, WebP, BMP, GIF or TIFF image.";

function plainError(status, data) {
  const kind = (data && data.error) || "";
  const detail = (data && data.detail) || "";
  if (status === 413) return "That photo is too large for this service.";
  if (status === 415 || ["NotAnImageError", "TruncatedImageError", "EmptyImageError", "UnsupportedImageError"].includes(kind)) return PHOTO_PROBLEM;
  if (status === 503) return "The service is busy; try again in a moment.";
  if (status === 403) return "Your key may not do that.";
  if (kind === "InvalidRequest") return "The service could not use what was sent; choose the photos again.";
  if (kind === "NoFaceError") return detail.replace("image", "photo") + ".";
  return detail || `The request failed (HTTP ${status}).`;
}

function form(fields) {
  const data = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    for (const item of Array.isArray(value) ? value : [value]) if (item !== undefined && item !== null) data.append(name, item);
  }
  return data;
}

function element(tag, properties = {}, text) {
  const node = Object.assign(document.createElement(tag), properties);
  if (text !== undefined) node.textContent = text;
  return node;
}

// One message in a result area; errors are always red (class "error").
function say(out, text, tone = "info", id) {
  out.innerHTML = "";
  if (text) out.append(element("p", { className: "message " + (tone === "error" ? "error" : tone), ...(id ? { id } : {}) }, text));
}

function clearResults(...selectors) {
  for (const selector of selectors) $(selector).innerHTML = "";
}

function rate() {
  return Number($("#operating-point").value);
}

function oneIn(rateValue) {
  return Math.round(1 / rateValue).toLocaleString("en");
}

function galleryRate() {
  return Number($("#gallery-point").value);
}

function describeOperatingPoint() {
  $("#operating-words").textContent = `Compare accepts two photos as one person when they are as similar as `
    + `only about 1 in ${oneIn(rate())} pairs of different people are. Search and the profile check compare a photo with `
    + `everyone enrolled, so their threshold follows the gallery's size: about 1 in ${oneIn(galleryRate())} searches by `
    + `somebody who is not enrolled would be taken for someone, however many people the gallery holds.`;
}

// --- sign in ----------------------------------------------------------------------------------------
async function signIn(key) {
  state.key = key;
  try {
    state.me = await api("GET", "/v1/me");
  } catch (error) {
    signOut(error.status === 401 ? "That key was refused: check it, or ask for a new one." : error.message);
    return;
  }
  sessionStorage.setItem("facesift-key", key);
  $("#signin-panel").hidden = true;
  $("#app").hidden = false;
  $("#signout").hidden = false;
  $("#sections").hidden = false;
  $("#who").textContent = `Signed in as ${state.me.name} (${state.me.admin ? "admin" : "galleries: " + state.me.galleries.join(", ")})`;
  $("#new-gallery").hidden = !state.me.admin;
  await loadGalleries();
}

function signOut(message) {
  sessionStorage.removeItem("facesift-key");
  state.key = null;
  state.me = null;
  $("#app").hidden = true;
  $("#signin-panel").hidden = false;
  $("#signout").hidden = true;
  $("#sections").hidden = true;
  $("#who").textContent = "";
  $("#signin-error").textContent = message || "";
}

// The header's links, one per section title (sections added later appear without touching this code).
function buildNavigation() {
  const nav = $("#sections");
  nav.innerHTML = "";
  for (const section of document.querySelectorAll("#app > section.card[id]")) {
    const title = section.querySelector("h2");
    if (title) nav.append(element("a", { href: "#" + section.id }, title.textContent));
  }
  nav.hidden = true;
}

// --- photos: drop zones, previews and face boxes ----------------------------------------------------
function isImage(file) {
  return file.type.startsWith("image/");
}

// Files from a picker or a drop: photos go to onFiles; anything else is said in `out` (never ignored).
function dropZone(zone, out, onFiles) {
  const input = zone.querySelector("input[type=file]");
  const take = (files) => {
    const photos = files.filter(isImage);
    const others = files.filter((file) => !isImage(file));
    if (others.length) say(out(), `${others.map((f) => f.name).join(", ")}: not a photo. ${PHOTO_PROBLEM}`, "error");
    onFiles(photos, others.length > 0);
  };
  input.addEventListener("change", () => take([...input.files]));
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    take([...event.dataTransfer.files]);
  });
}

// Draw a photo and its faces' boxes (green: the face used; yellow: others). Throws PHOTO_PROBLEM when undecodable.
async function showPhoto(canvas, file, faces = [], labels = []) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    clearPhoto(canvas);
    throw new Error(`${file.name}: ${PHOTO_PROBLEM}`);
  }
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  canvas.hidden = false;
  const context = canvas.getContext("2d");
  context.drawImage(bitmap, 0, 0);
  context.lineWidth = Math.max(3, Math.max(bitmap.width, bitmap.height) / 120);
  context.font = `${Math.max(14, Math.round(bitmap.width / 40))}px system-ui, sans-serif`;
  for (const [index, face] of faces.entries()) {
    const [x1, y1, x2, y2] = face.box;
    context.strokeStyle = index === 0 ? "#2ecc71" : "#f1c40f";
    context.strokeRect(x1, y1, x2 - x1, y2 - y1);
    context.fillStyle = "#e74c3c";
    for (const [x, y] of face.landmarks || []) context.fillRect(x - context.lineWidth, y - context.lineWidth, 2 * context.lineWidth, 2 * context.lineWidth);
    if (labels[index]) {
      context.fillStyle = context.strokeStyle;
      context.fillText(labels[index], x1, Math.max(16, y1 - 6));
    }
  }
}

function clearPhoto(canvas) {
  canvas.width = 0;
  canvas.height = 0;
  const zone = canvas.closest(".drop");
  if (zone) zone.classList.remove("filled");
  else canvas.hidden = true;
}

function qualityNote(quality, label) {
  return quality && quality.reasons.length ? `The ${label} face is hard to judge: ${quality.reasons.join("; ")}. ` : "";
}

function meter(similarity, threshold) {
  const toPercent = (value) => `${Math.max(0, Math.min(1, value)) * 100}%`;
  const box = element("div", { className: "meter-box" });
  const bar = element("div", { className: "meter", title: `similarity ${similarity.toFixed(3)}, threshold ${threshold.toFixed(3)}` });
  const fill = element("div", { className: "fill" });
  fill.style.width = toPercent(similarity);
  const mark = element("div", { className: "mark" });
  mark.style.left = toPercent(threshold);
  bar.append(fill, mark);
  const legend = element("p", { className: "legend muted" });
  legend.append(element("span", { className: "swatch fill" }), ` similarity ${similarity.toFixed(2)} (0 = unlike, 1 = identical)   `,
                element("span", { className: "swatch mark" }), ` threshold ${threshold.toFixed(2)}: at or right of it counts as the same person`);
  box.append(bar, legend);
  return box;
}

// --- operating point --------------------------------------------------------------------------------
// (wired below; every decision sends the chosen rate)

// --- compare ----------------------------------------------------------------------------------------
const pair = { a: null, b: null };

async function pickForCompare(side, files, refused) {
  const zone = $(`#compare-${side}`);
  const out = $("#compare-result");
  if (!files.length) {
    if (refused) { pair[side] = null; clearPhoto(zone.querySelector("canvas")); }
    $("#compare-btn").disabled = !(pair.a && pair.b);
    return;
  }
  pair[side] = files[0];
  say(out, "");
  zone.classList.add("filled");
  try {
    await showPhoto(zone.querySelector("canvas"), files[0]);
  } catch (error) {
    pair[side] = null;
    say(out, error.message, "error");
  }
  $("#compare-btn").disabled = !(pair.a && pair.b);
}

async function compare() {
  const out = $("#compare-result");
  say(out, "Comparing…");
  $("#compare-btn").disabled = true;
  try {
    const result = await api("POST", "/v1/verify", form({ image_a: pair.a, image_b: pair.b, [ONE_TO_ONE_RATE_FIELD]: rate() }));
    await showPhoto($("#compare-a canvas"), pair.a, [result.face_a]);
    await showPhoto($("#compare-b canvas"), pair.b, [result.face_b]);
    const same = result.verified;
    const point = result.false_match_rate ? ` (set so that about 1 in ${oneIn(result.false_match_rate)} pairs of different people would pass)` : "";
    out.innerHTML = "";
    out.append(
      element("p", { id: "verdict", className: "verdict " + (same ? "same" : "different") }, same ? "Same person" : "Different people"),
      element("p", {}, same
        ? `These photos very likely show the same person: their similarity ${result.similarity.toFixed(2)} reaches the threshold ${result.threshold.toFixed(2)}${point}.`
        : `These photos most likely show two different people: their similarity ${result.similarity.toFixed(2)} is below the threshold ${result.threshold.toFixed(2)}${point}.`),
      meter(result.similarity, result.threshold),
      element("p", { className: "muted" }, qualityNote(result.quality_a, "first") + qualityNote(result.quality_b, "second")),
    );
  } catch (error) {
    say(out, error.message, "error");
  } finally {
    $("#compare-btn").disabled = !(pair.a && pair.b);
  }
}

// --- detect -----------------------------------------------------------------------------------------
const chosen = { enrol: [], search: null, check: null, detect: null };

async function detect() {
  const out = $("#detect-result");
  if (!chosen.detect) { say(out, "Choose a photo first.", "error"); return; }
  say(out, "Looking for faces…");
  try {
    const result = await api("POST", "/v1/detect", form({ image: chosen.detect }));
    await showPhoto($("#detect-canvas"), chosen.detect, result.faces.map((item) => item.face), result.faces.map((_, i) => String(i + 1)));
    say(out, result.faces.length ? `${result.faces.length} face(s) found.` : "No face was found in this photo.",
        result.faces.length ? "good" : "bad", "detect-summary");
    if (!result.faces.length) return;
    const table = element("table", { id: "detect-faces", className: "people" });
    table.append(element("thead"));
    table.tHead.append(row("th", ["face", "box (x, y, width, height)", "detector score", "quality", "notes"]));
    const body = element("tbody");
    for (const [index, item] of result.faces.entries()) {
      const [x1, y1, x2, y2] = item.face.box.map(Math.round);
      body.append(row("td", [String(index + 1), `${x1}, ${y1}, ${x2 - x1} × ${y2 - y1}`, item.face.score.toFixed(2),
                             item.quality.score.toFixed(2), item.quality.reasons.join("; ") || "good for recognition"]));
    }
    table.append(body);
    out.append(table);
  } catch (error) {
    say(out, error.message, "error");
  }
}

function row(cell, values) {
  const tr = element("tr");
  for (const value of values) tr.append(element(cell, {}, value));
  return tr;
}

// --- galleries: settings, stats, people, one person -------------------------------------------------
const PAGE_SIZE = 10;
const people = { offset: 0, search: "", person: null };

async function loadGalleries(select) {
  const data = await api("GET", "/v1/galleries");
  state.galleries = data.galleries;
  const menu = $("#gallery-select");
  menu.innerHTML = "";
  for (const gallery of state.galleries) menu.append(element("option", { value: gallery.name }, gallery.name));
  if (select) menu.value = select;
  await galleryChanged();
}

function currentGallery() {
  return state.galleries.find((gallery) => gallery.name === $("#gallery-select").value);
}

function galleryUrl(...parts) {
  return ["/v1/galleries", currentGallery().name, ...parts.map(encodeURIComponent)].join("/");
}

// A different gallery: nothing shown from the previous one survives.
async function galleryChanged() {
  $("#gallery-error").textContent = "";
  clearResults("#enrol-result", "#search-result", "#check-result", "#person-message");
  for (const canvas of ["#search-canvas", "#check-canvas"]) clearPhoto($(canvas));
  closePerson();
  people.offset = 0;
  people.search = $("#people-search").value = "";
  const gallery = currentGallery();
  $("#delete-gallery-btn").hidden = !(gallery && state.me && state.me.admin);
  $("#gallery-info").textContent = gallery
    ? (gallery.keep_images ? "keeps enrolled photos" : "keeps face templates only, no photos")
    : (state.me && state.me.admin ? "No gallery yet: create one below." : "No gallery available to this key.");
  await Promise.all([loadStats(), loadPeople()]);
}

async function loadStats() {
  const list = $("#gallery-stats");
  list.innerHTML = "";
  if (!currentGallery()) return;
  try {
    const info = await api("GET", galleryUrl());
    const facts = [["people", info.stats.persons], ["samples", info.stats.samples], ["model", `${info.stats.model} (${info.stats.dims}-d)`],
                   ["storage", info.stats.backend], ["photos", info.keep_images ? "kept" : "not kept"],
                   ["created", info.created_at ? when(info.created_at) : "n/a"]];
    for (const [name, value] of facts) {
      const fact = element("div");
      fact.append(element("dt", {}, name), element("dd", { id: `stat-${name}` }, String(value)));
      list.append(fact);
    }
  } catch (error) {
    $("#gallery-error").textContent = error.message;
  }
}

function when(seconds) {
  return new Date(seconds * 1000).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
}

async function loadPeople() {
  const body = $("#people tbody");
  body.innerHTML = "";
  $("#people-range").textContent = "";
  $("#people-prev").disabled = $("#people-next").disabled = true;
  if (!currentGallery()) return;
  const query = new URLSearchParams({ offset: people.offset, limit: PAGE_SIZE + 1, search: people.search });
  try {
    const data = await api("GET", `${galleryUrl("persons")}?${query}`);
    const page = data.persons.slice(0, PAGE_SIZE);
    for (const person of page) {
      const link = element("button", { className: "link person-link" }, person.person_id);
      link.addEventListener("click", () => openPerson(person.person_id));
      const tr = element("tr");
      const first = element("td");
      first.append(link);
      tr.append(first, element("td", {}, String(person.sample_count)), element("td", {}, when(person.created_at)));
      body.append(tr);
    }
    const range = page.length ? `${people.offset + 1}–${people.offset + page.length}` : "none";
    $("#people-range").textContent = people.search ? `matching “${people.search}”: ${range}` : `people ${range}`;
    $("#people-prev").disabled = people.offset === 0;
    $("#people-next").disabled = data.persons.length <= PAGE_SIZE;
  } catch (error) {
    $("#gallery-error").textContent = error.message;
  }
}

async function refreshGallery() {
  await Promise.all([loadStats(), loadPeople()]);
  if (people.person) await openPerson(people.person, false);
}

function closePerson() {
  people.person = null;
  $("#person").hidden = true;
  $("#person-samples").innerHTML = "";
}

async function openPerson(personId, clearMessage = true) {
  const gallery = currentGallery();
  if (clearMessage) say($("#person-message"), "");
  try {
    const data = await api("GET", galleryUrl("persons", personId, "samples"));
    people.person = personId;
    $("#person").hidden = false;
    $("#person-title").textContent = `${personId}: ${data.samples.length} sample(s)`;
    const list = $("#person-samples");
    list.innerHTML = "";
    for (const sample of data.samples) {
      const item = element("li", { className: "sample" });
      item.dataset.sampleId = sample.sample_id;
      item.append(sample.has_image ? await samplePhoto(gallery.name, sample.sample_id) : element("code", { className: "sample-id" }, sample.sample_id.slice(0, 12)),
                  element("div", { className: "muted" }, `quality ${sample.quality.toFixed(2)}`),
                  element("div", { className: "muted" }, when(sample.created_at)));
      const remove = element("button", { className: "danger small delete-sample" }, "Delete");
      remove.addEventListener("click", () => deleteSample(personId, sample.sample_id));
      item.append(remove);
      list.append(item);
    }
  } catch (error) {
    closePerson();
    say($("#person-message"), error.message, "error");
  }
}

// A browser dialog asking before anything is deleted; resolves true on "Delete".
function confirmDelete(text) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true }));
}

async function deleteSample(personId, sampleId) {
  if (!await confirmDelete(`Delete this sample of ${personId}? It can no longer match them.`)) return;
  try {
    await api("DELETE", galleryUrl("samples", sampleId));
    say($("#person-message"), `Deleted one sample of ${personId}.`, "good");
    await refreshGallery();
  } catch (error) {
    say($("#person-message"), error.message, "error");
  }
}

async function deletePerson() {
  const personId = people.person;
  if (!personId || !await confirmDelete(`Delete ${personId} and all their samples?`)) return;
  try {
    const result = await api("DELETE", galleryUrl("persons", personId));
    closePerson();
    say($("#person-message"), `Deleted ${personId} (${result.samples_removed} sample(s)).`, "good");
    await refreshGallery();
  } catch (error) {
    say($("#person-message"), error.message, "error");
  }
}

async function deleteGallery() {
  const gallery = currentGallery();
  if (!gallery || !await confirmDelete(`Delete the gallery ${gallery.name} and everyone enrolled in it? This cannot be undone.`)) return;
  $("#gallery-error").textContent = "";
  try {
    await api("DELETE", `/v1/galleries/${gallery.name}`);
    await loadGalleries();
    say($("#person-message"), `Deleted the gallery ${gallery.name}.`, "good");
  } catch (error) {
    $("#gallery-error").textContent = error.message;
  }
}

async function createGallery(event) {
  event.preventDefault();
  $("#gallery-error").textContent = "";
  const name = $("#new-gallery-name").value.trim();
  try {
    await api("POST", "/v1/galleries", { name, keep_images: $("#new-gallery-keep").checked });
    $("#new-gallery-name").value = "";
    $("#new-gallery-keep").checked = false;
    await loadGalleries(name);
  } catch (error) {
    $("#gallery-error").textContent = error.message;
  }
}

function needGallery(out) {
  const gallery = currentGallery();
  if (!gallery) say(out, "Choose or create a gallery first.", "error");
  return gallery;
}

// --- enrol, search, check ---------------------------------------------------------------------------
// A new choice replaces the old one everywhere: a refused file leaves nothing of the previous photo on screen.
function choose(kind, files, many) {
  const zone = $(`#${kind}-drop`);
  const canvas = $(`#${kind}-canvas`);
  if (canvas) clearPhoto(canvas);
  chosen[kind] = many ? files : files[0] || null;
  zone.classList.toggle("filled", files.length > 0);
  zone.querySelector(".hint").textContent = !files.length ? zone.dataset.hint
    : many ? `${files.length} photo(s): ${files.map((f) => f.name).join(", ")}` : files[0].name;
}

const OUTCOME_WORDS = {
  added: "added", no_face: "no face found", multiple_faces: "several faces: use a photo of this person alone",
  low_quality: "face too small, blurred or turned away", duplicate: "already enrolled",
  conflict: "looks more like someone else enrolled", invalid_image: "not a readable photo",
  spoof: "refused: looks like a photo of a photo or a screen, not a live face",
};

// The outcome in words, and the reason only where it adds something the words do not say.
function outcomeText(item) {
  const words = OUTCOME_WORDS[item.outcome] || item.outcome;
  const reason = item.outcome === "added" || !item.reason || words.includes(item.reason) || item.reason.includes(words) ? "" : item.reason;
  return reason ? `${words} (${reason})` : words;
}

async function enrol() {
  const out = $("#enrol-result");
  const gallery = needGallery(out);
  const person = $("#enrol-person").value.trim();
  if (!gallery) return;
  const problem = personIdProblem(person);
  if (problem) { say(out, problem, "error"); return; }
  if (!chosen.enrol.length) { say(out, "Choose at least one photo of this person.", "error"); return; }
  say(out, "Enrolling…");
  try {
    const report = await api("POST", galleryUrl("persons", person, "samples"), form({ images: chosen.enrol, strict: $("#enrol-strict").checked, require_live: $("#enrol-live").checked }));
    say(out, `${report.added} of ${report.results.length} photo(s) enrolled for ${report.person_id}.`, report.added ? "good" : "bad", "enrol-summary");
    const list = element("ul", { className: "outcomes" });
    for (const item of report.results) {
      const name = chosen.enrol[item.index] ? chosen.enrol[item.index].name : item.source;
      list.append(element("li", {}, `${name}: ${outcomeText(item)}`));
    }
    out.append(list);
    resetEnrolFiles();
    await refreshGallery();
  } catch (error) {
    say(out, error.message, "error");
  }
}

function resetEnrolFiles() {  // a file input adds to what it holds; start the next person afresh
  chosen.enrol = [];
  const zone = $("#enrol-drop");
  zone.querySelector("input[type=file]").value = "";
  zone.classList.remove("filled");
  zone.querySelector(".hint").textContent = zone.dataset.hint;
}

async function search() {
  const out = $("#search-result");
  const gallery = needGallery(out);
  if (!gallery) return;
  if (!chosen.search) { say(out, "Choose a photo to search with.", "error"); return; }
  say(out, "Searching…");
  try {
    // the search uses the largest face (green); the photo's other faces are drawn too (yellow), so a group photo shows which
    const [result, found] = await Promise.all([
      api("POST", galleryUrl("search"), form({ image: chosen.search, k: 5, [ONE_TO_MANY_RATE_FIELD]: galleryRate() })),
      api("POST", "/v1/detect", form({ image: chosen.search })),
    ]);
    const best = result.candidates[0];
    const match = result.decision === "match";
    const others = found.faces.map((item) => item.face).filter((face) => !result.face || face.box.some((v, i) => Math.abs(v - result.face.box[i]) > 2));
    await showPhoto($("#search-canvas"), chosen.search, [result.face, ...others].filter(Boolean), [result.face ? (match ? best.person_id : "unknown") : ""]);
    const words = {
      match: best && `Best match: ${best.person_id} (similarity ${best.similarity.toFixed(2)}, threshold ${result.threshold.toFixed(2)}).`,
      unknown: `Nobody in the gallery is similar enough (threshold ${result.threshold.toFixed(2)}): an unknown person.`,
      no_face: "No face was found in this photo.",
    };
    say(out, words[result.decision], match ? "good" : "bad", "search-summary");
    if (!result.candidates.length) return;
    out.append(element("p", { id: "candidates-note", className: "muted" }, match
      ? "The people most like this face, best first; only those at or above the threshold count as a match."
      : "The closest people enrolled, for reference only: none is similar enough, so none of them is a match."));
    const list = element("ol", { className: "candidates" + (match ? "" : " not-matches") });
    for (const candidate of result.candidates) {
      const isMatch = candidate.similarity >= result.threshold;
      const item = element("li", { className: candidate.rank === 1 && match ? "best" : "" });
      if (gallery.keep_images) item.append(await samplePhoto(gallery.name, candidate.sample_id));
      item.append(element("div", {}, `${candidate.rank}. ${candidate.person_id}`),
                  element("div", { className: "muted" }, `similarity ${candidate.similarity.toFixed(2)}${isMatch ? "" : " (not a match)"}`));
      list.append(item);
    }
    out.append(list, element("p", { className: "muted", id: "search-point" }, describePoint(result.operating_point)));
  } catch (error) {
    say(out, error.message, "error");
  }
}

async function samplePhoto(gallery, sampleId) {
  try {
    const blob = await api("GET", `/v1/galleries/${gallery}/samples/${sampleId}/image`);
    return element("img", { src: URL.createObjectURL(blob), alt: "enrolled photo" });
  } catch {
    return element("div", { className: "muted" }, "(no photo)");
  }
}

const CHECK_WORDS = {
  owner: ["good", (r) => `Looks like ${r.person_id}: the photo can be used.`],
  other_person: ["bad", (r) => `This looks like someone else enrolled (${r.other_person}), not ${r.person_id}.`],
  unknown: ["bad", (r) => `This does not look like ${r.person_id} or anyone else enrolled.`],
  no_face: ["bad", () => "No face was found in this photo."],
  low_quality: ["bad", () => "The face is too small, blurred or turned away to judge."],
  multiple_faces: ["bad", () => "Several faces: a profile photo should show one person."],
  spoof: ["bad", () => "Refused: this looks like a photo of a photo or a screen, not a live face."],
};

async function check() {
  const out = $("#check-result");
  const gallery = needGallery(out);
  const person = $("#check-person").value.trim();
  if (!gallery) return;
  const problem = personIdProblem(person);
  if (problem) { say(out, problem, "error"); return; }
  if (!chosen.check) { say(out, "Choose their new photo.", "error"); return; }
  say(out, "Checking…");
  try {
    const result = await api("POST", galleryUrl("persons", person, "check"), form({ image: chosen.check, [ONE_TO_MANY_RATE_FIELD]: galleryRate(), require_live: $("#check-live").checked }));
    const [tone, words] = CHECK_WORDS[result.outcome] || ["bad", () => result.outcome];
    await showPhoto($("#check-canvas"), chosen.check, result.face ? [result.face] : []);
    say(out, words(result), tone, "check-summary");
    out.append(element("p", { className: "muted" }, result.reasons.join("; ")),
               element("p", { className: "muted", id: "check-point" }, describePoint(result.operating_point)));
  } catch (error) {
    say(out, error.message, "error");
  }
}

// --- wiring -----------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  buildNavigation();
  $("#signin-form").addEventListener("submit", (event) => { event.preventDefault(); signIn($("#key").value.trim()); });
  $("#signout").addEventListener("click", () => signOut());
  $("#operating-point").addEventListener("change", describeOperatingPoint);
  $("#gallery-point").addEventListener("change", describeOperatingPoint);
  describeOperatingPoint();
  dropZone($("#compare-a"), () => $("#compare-result"), (files, refused) => pickForCompare("a", files, refused));
  dropZone($("#compare-b"), () => $("#compare-result"), (files, refused) => pickForCompare("b", files, refused));
  $("#compare-btn").addEventListener("click", compare);
  for (const zone of document.querySelectorAll(".drop.small")) zone.dataset.hint = zone.querySelector(".hint").textContent;
  dropZone($("#detect-drop"), () => $("#detect-result"), (files) => { choose("detect", files, false); if (files.length) say($("#detect-result"), ""); });
  $("#detect-btn").addEventListener("click", detect);
  $("#gallery-select").addEventListener("change", galleryChanged);
  $("#new-gallery").addEventListener("submit", createGallery);
  $("#delete-gallery-btn").addEventListener("click", deleteGallery);
  $("#delete-person-btn").addEventListener("click", deletePerson);
  let typing;
  $("#people-search").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { people.search = $("#people-search").value.trim(); people.offset = 0; loadPeople(); }, 250);
  });
  $("#people-prev").addEventListener("click", () => { people.offset = Math.max(0, people.offset - PAGE_SIZE); loadPeople(); });
  $("#people-next").addEventListener("click", () => { people.offset += PAGE_SIZE; loadPeople(); });
  for (const [kind, many] of [["enrol", true], ["search", false], ["check", false]]) {
    dropZone($(`#${kind}-drop`), () => $(`#${kind}-result`), (files) => { choose(kind, files, many); if (files.length) say($(`#${kind}-result`), ""); });
  }
  $("#enrol-btn").addEventListener("click", enrol);
  $("#enrol-person").addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); enrol(); } });
  $("#check-person").addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); check(); } });
  $("#search-btn").addEventListener("click", search);
  $("#check-btn").addEventListener("click", check);
  if (state.key) signIn(state.key);
});
