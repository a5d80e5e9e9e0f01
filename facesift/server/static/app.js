// The facesift page: plain JS, no libraries. The API key lives in this tab's sessionStorage only.
"use strict";

const $ = (selector) => document.querySelector(selector);
const state = { key: sessionStorage.getItem("facesift-key"), me: null, galleries: [] };

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

function plainError(status, data) {
  const detail = (data && data.detail) || "";
  if (status === 413) return "That photo is too large. " + detail;
  if (status === 415) return "That file is not a photo we can read. " + detail;
  if (status === 503) return "The service is busy; try again in a moment.";
  if (status === 403) return "Your key may not do that. " + detail;
  return detail || `The request failed (HTTP ${status}).`;
}

function form(fields) {
  const data = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    for (const item of Array.isArray(value) ? value : [value]) if (item !== undefined && item !== null) data.append(name, item);
  }
  return data;
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
  $("#who").textContent = "";
  $("#signin-error").textContent = message || "";
}

// --- photos: drop zones and face boxes --------------------------------------------------------------
function dropZone(zone, onFiles) {
  const input = zone.querySelector("input[type=file]");
  input.addEventListener("change", () => onFiles([...input.files]));
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    onFiles([...event.dataTransfer.files].filter((file) => file.type.startsWith("image/")));
  });
}

async function showPhoto(canvas, file, faces = []) {
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const context = canvas.getContext("2d");
  context.drawImage(bitmap, 0, 0);
  context.lineWidth = Math.max(3, Math.max(bitmap.width, bitmap.height) / 120);
  for (const [index, face] of faces.entries()) {
    const [x1, y1, x2, y2] = face.box;
    context.strokeStyle = index === 0 ? "#2ecc71" : "#f1c40f";
    context.strokeRect(x1, y1, x2 - x1, y2 - y1);
    context.fillStyle = "#e74c3c";
    for (const [x, y] of face.landmarks) context.fillRect(x - context.lineWidth, y - context.lineWidth, 2 * context.lineWidth, 2 * context.lineWidth);
  }
}

// --- compare ----------------------------------------------------------------------------------------
const pair = { a: null, b: null };

function pickForCompare(side, files) {
  if (!files.length) return;
  pair[side] = files[0];
  const zone = $(`#compare-${side}`);
  zone.classList.add("filled");
  showPhoto(zone.querySelector("canvas"), files[0]);
  $("#compare-btn").disabled = !(pair.a && pair.b);
  $("#compare-result").textContent = "";
}

async function compare() {
  const out = $("#compare-result");
  out.textContent = "Comparing…";
  $("#compare-btn").disabled = true;
  try {
    const result = await api("POST", "/v1/verify", form({ image_a: pair.a, image_b: pair.b }));
    await showPhoto($("#compare-a canvas"), pair.a, [result.face_a]);
    await showPhoto($("#compare-b canvas"), pair.b, [result.face_b]);
    const same = result.verified;
    const rate = result.false_match_rate ? ` (set so that about 1 in ${Math.round(1 / result.false_match_rate).toLocaleString("en")} pairs of different people would pass)` : "";
    out.innerHTML = "";
    out.append(
      element("p", { id: "verdict", className: "verdict " + (same ? "same" : "different") }, same ? "Same person" : "Different people"),
      element("p", {}, same
        ? `These photos very likely show the same person: their similarity ${result.similarity.toFixed(2)} reaches the threshold ${result.threshold.toFixed(2)}${rate}.`
        : `These photos most likely show two different people: their similarity ${result.similarity.toFixed(2)} is below the threshold ${result.threshold.toFixed(2)}${rate}.`),
      meter(result.similarity, result.threshold),
      element("p", { className: "muted" }, qualityNote(result.quality_a, "first") + qualityNote(result.quality_b, "second")),
    );
  } catch (error) {
    out.innerHTML = "";
    out.append(element("p", { className: "error" }, error.message));
  } finally {
    $("#compare-btn").disabled = !(pair.a && pair.b);
  }
}

function meter(similarity, threshold) {
  const toPercent = (value) => `${Math.max(0, Math.min(1, value)) * 100}%`;
  const bar = element("div", { className: "meter", title: `similarity ${similarity.toFixed(3)}, threshold ${threshold.toFixed(3)}` });
  const fill = element("div", { className: "fill" });
  fill.style.width = toPercent(similarity);
  const mark = element("div", { className: "mark" });
  mark.style.left = toPercent(threshold);
  bar.append(fill, mark);
  return bar;
}

function qualityNote(quality, label) {
  return quality && quality.reasons.length ? `The ${label} face is hard to judge: ${quality.reasons.join("; ")}. ` : "";
}

function element(tag, properties = {}, text) {
  const node = Object.assign(document.createElement(tag), properties);
  if (text !== undefined) node.textContent = text;
  return node;
}

// --- galleries --------------------------------------------------------------------------------------
async function loadGalleries(select) {
  const data = await api("GET", "/v1/galleries");
  state.galleries = data.galleries;
  const menu = $("#gallery-select");
  menu.innerHTML = "";
  for (const gallery of state.galleries) menu.append(element("option", { value: gallery.name }, gallery.name));
  if (select) menu.value = select;
  describeGallery();
}

function currentGallery() {
  return state.galleries.find((gallery) => gallery.name === $("#gallery-select").value);
}

function describeGallery() {
  const gallery = currentGallery();
  $("#gallery-info").textContent = gallery
    ? (gallery.keep_images ? "keeps enrolled photos" : "keeps face templates only, no photos")
    : (state.me && state.me.admin ? "No gallery yet: create one below." : "No gallery available to this key.");
}

async function createGallery(event) {
  event.preventDefault();
  $("#gallery-error").textContent = "";
  const name = $("#new-gallery-name").value.trim();
  try {
    await api("POST", "/v1/galleries", { name, keep_images: $("#new-gallery-keep").checked });
    $("#new-gallery-name").value = "";
    await loadGalleries(name);
  } catch (error) {
    $("#gallery-error").textContent = error.message;
  }
}

function needGallery(out) {
  const gallery = currentGallery();
  if (!gallery) out.textContent = "Choose or create a gallery first.";
  return gallery;
}

// --- enrol, search, check ---------------------------------------------------------------------------
const chosen = { enrol: [], search: null, check: null };

function choose(kind, files, many) {
  if (!files.length) return;
  chosen[kind] = many ? files : files[0];
  const zone = $(`#${kind}-drop`);
  zone.classList.add("filled");
  zone.querySelector(".hint").textContent = many ? `${files.length} photo(s): ${files.map((f) => f.name).join(", ")}` : files[0].name;
}

const OUTCOME_WORDS = {
  added: "added", no_face: "no face found", multiple_faces: "several faces: use a photo of this person alone",
  low_quality: "face too small, blurred or turned away", duplicate: "already enrolled",
  conflict: "looks more like someone else enrolled", invalid_image: "not a readable photo",
  spoof: "refused: looks like a photo of a photo or a screen, not a live face",
};

async function enrol() {
  const out = $("#enrol-result");
  const gallery = needGallery(out);
  const person = $("#enrol-person").value.trim();
  if (!gallery) return;
  if (!person || !chosen.enrol.length) { out.textContent = "Enter a person id and choose at least one photo."; return; }
  out.textContent = "Enrolling…";
  try {
    const report = await api("POST", `/v1/galleries/${gallery.name}/persons/${encodeURIComponent(person)}/samples`, form({ images: chosen.enrol, require_live: $("#enrol-live").checked }));
    out.innerHTML = "";
    out.append(element("p", { id: "enrol-summary", className: "outcome " + (report.added ? "good" : "bad") },
      `${report.added} of ${report.results.length} photo(s) enrolled for ${report.person_id}.`));
    const list = element("ul", { className: "outcomes" });
    for (const item of report.results) {
      const name = chosen.enrol[item.index] ? chosen.enrol[item.index].name : item.source;
      list.append(element("li", {}, `${name}: ${OUTCOME_WORDS[item.outcome] || item.outcome}${item.reason && item.outcome !== "added" ? " (" + item.reason + ")" : ""}`));
    }
    out.append(list);
    resetEnrolFiles();
  } catch (error) {
    out.textContent = error.message;
  }
}

function resetEnrolFiles() {  // a file input adds to what it holds; start the next person afresh
  chosen.enrol = [];
  const zone = $("#enrol-drop");
  zone.querySelector("input[type=file]").value = "";
  zone.classList.remove("filled");
  zone.querySelector(".hint").textContent = "Drop photos of one person here";
}

async function search() {
  const out = $("#search-result");
  const gallery = needGallery(out);
  if (!gallery) return;
  if (!chosen.search) { out.textContent = "Choose a photo to search with."; return; }
  out.textContent = "Searching…";
  try {
    const result = await api("POST", `/v1/galleries/${gallery.name}/search`, form({ image: chosen.search, k: 5 }));
    out.innerHTML = "";
    const best = result.candidates[0];
    const words = {
      match: best && `Best match: ${best.person_id} (similarity ${best.similarity.toFixed(2)}, threshold ${result.threshold.toFixed(2)}).`,
      unknown: `Nobody in the gallery is similar enough (threshold ${result.threshold.toFixed(2)}): an unknown person.`,
      no_face: "No face was found in this photo.",
    };
    out.append(element("p", { id: "search-summary", className: "outcome " + (result.decision === "match" ? "good" : "bad") }, words[result.decision]));
    const list = element("ol", { className: "candidates" });
    for (const candidate of result.candidates) {
      const item = element("li", { className: candidate.rank === 1 && result.decision === "match" ? "best" : "" });
      if (gallery.keep_images) item.append(await samplePhoto(gallery.name, candidate.sample_id));
      item.append(element("div", {}, `${candidate.rank}. ${candidate.person_id}`),
                  element("div", { className: "muted" }, `similarity ${candidate.similarity.toFixed(2)}`));
      list.append(item);
    }
    out.append(list, element("p", { className: "muted", id: "search-point" }, describePoint(result.operating_point)));
  } catch (error) {
    out.textContent = error.message;
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
  if (!person || !chosen.check) { out.textContent = "Enter the person id and choose their new photo."; return; }
  out.textContent = "Checking…";
  try {
    const result = await api("POST", `/v1/galleries/${gallery.name}/persons/${encodeURIComponent(person)}/check`, form({ image: chosen.check, require_live: $("#check-live").checked }));
    const [tone, say] = CHECK_WORDS[result.outcome] || ["bad", () => result.outcome];
    out.innerHTML = "";
    out.append(element("p", { id: "check-summary", className: "outcome " + tone }, say(result)),
               element("p", { className: "muted" }, result.reasons.join("; ")),
               element("p", { className: "muted", id: "check-point" }, describePoint(result.operating_point)));
  } catch (error) {
    out.textContent = error.message;
  }
}

// --- wiring -----------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("#signin-form").addEventListener("submit", (event) => { event.preventDefault(); signIn($("#key").value.trim()); });
  $("#signout").addEventListener("click", () => signOut());
  dropZone($("#compare-a"), (files) => pickForCompare("a", files));
  dropZone($("#compare-b"), (files) => pickForCompare("b", files));
  $("#compare-btn").addEventListener("click", compare);
  $("#gallery-select").addEventListener("change", describeGallery);
  $("#new-gallery").addEventListener("submit", createGallery);
  dropZone($("#enrol-drop"), (files) => choose("enrol", files, true));
  dropZone($("#search-drop"), (files) => choose("search", files, false));
  dropZone($("#check-drop"), (files) => choose("check", files, false));
  $("#enrol-btn").addEventListener("click", enrol);
  $("#search-btn").addEventListener("click", search);
  $("#check-btn").addEventListener("click", check);
  if (state.key) signIn(state.key);
});
