// Open-set identification on the page: the operating point every search and check states, and "every face":
// a group photo with a box and a name (or "unknown") drawn on each face. Uses app.js's helpers ($, api, form,
// element, chosen, needGallery, galleryUrl, say, showPhoto).

function describePoint(point) {
  if (!point) return "";
  const people = point.gallery_size.toLocaleString("en");
  return `Operating point: threshold ${point.threshold.toFixed(3)}, set so that about ${(100 * point.fpir).toPrecision(2)} % of ` +
    `searches by people who are not enrolled would match someone, with ${people} people enrolled (${point.aggregation} aggregation, set by ${point.source}).`;
}

async function searchAllFaces() {
  const out = $("#search-result");
  const gallery = needGallery(out);
  if (!gallery) return;
  if (!chosen.search) { say(out, "Choose a photo to search with.", "error"); return; }
  say(out, "Searching every face…");
  try {
    const result = await api("POST", galleryUrl("search"), form({ image: chosen.search, k: 3, faces: "all", [ONE_TO_MANY_RATE_FIELD]: galleryRate() }));
    const names = result.faces.map((f) => (f.decision === "match" ? f.candidates[0].person_id : "unknown"));
    const canvas = $("#search-canvas");
    await showPhoto(canvas, chosen.search, result.faces.map((f) => f.face), names);
    canvas.dataset.names = names.join(",");
    const named = result.faces.filter((f) => f.decision === "match").length;
    say(out, result.faces.length ? `${result.faces.length} face(s), ${named} recognised.` : "No face was found in this photo.",
        named ? "good" : "bad", "search-summary");
    const list = element("ol", { className: "faces", id: "search-faces" });
    for (const face of result.faces) {
      const best = face.candidates[0];
      list.append(element("li", { className: face.decision === "match" ? "best" : "" }, face.decision === "match"
        ? `${best.person_id} (similarity ${best.similarity.toFixed(2)})`
        : `unknown${best ? ` (closest: ${best.person_id}, ${best.similarity.toFixed(2)}: not a match)` : ""}`));
    }
    out.append(list, element("p", { className: "muted", id: "search-point" }, describePoint(result.operating_point)));
  } catch (error) {
    say(out, error.message, "error");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const button = $("#search-btn");
  const toggle = element("label", { className: "muted" });
  const box = element("input", { type: "checkbox", id: "search-all-faces" });
  toggle.append(box, " every face (group photo)");
  button.after(toggle);
  // capture phase: with the box ticked this search replaces app.js's single-face one
  button.addEventListener("click", (event) => {
    if (!box.checked) return;
    event.stopImmediatePropagation();
    searchAllFaces();
  }, true);
});
