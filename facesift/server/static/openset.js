// Open-set identification on the page: the operating point every search and check states, and "every face":
// a group photo with a box and a name (or "unknown") drawn on each face. Uses app.js's helpers ($, api, form,
// element, chosen, needGallery).

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
  if (!chosen.search) { out.textContent = "Choose a photo to search with."; return; }
  out.textContent = "Searching every face…";
  try {
    const result = await api("POST", `/v1/galleries/${gallery.name}/search`, form({ image: chosen.search, k: 3, faces: "all" }));
    out.innerHTML = "";
    const named = result.faces.filter((f) => f.decision === "match").length;
    out.append(element("p", { id: "search-summary", className: "outcome " + (named ? "good" : "bad") },
      result.faces.length ? `${result.faces.length} face(s), ${named} recognised.` : "No face was found in this photo."));
    if (result.faces.length) out.append(await tagged(chosen.search, result.faces));
    const list = element("ol", { className: "faces", id: "search-faces" });
    for (const face of result.faces) {
      const best = face.candidates[0];
      list.append(element("li", { className: face.decision === "match" ? "best" : "" }, face.decision === "match"
        ? `${best.person_id} (similarity ${best.similarity.toFixed(2)})`
        : `unknown${best ? ` (closest: ${best.person_id}, ${best.similarity.toFixed(2)})` : ""}`));
    }
    out.append(list, element("p", { className: "muted", id: "search-point" }, describePoint(result.operating_point)));
  } catch (error) {
    out.textContent = error.message;
  }
}

async function tagged(file, faces) {
  const image = await createImageBitmap(file, { imageOrientation: "from-image" });
  const canvas = element("canvas", { id: "search-canvas" });
  const scale = Math.min(1, 640 / image.width);
  canvas.width = Math.round(image.width * scale);
  canvas.height = Math.round(image.height * scale);
  const draw = canvas.getContext("2d");
  draw.drawImage(image, 0, 0, canvas.width, canvas.height);
  draw.lineWidth = 2;
  draw.font = "bold 14px sans-serif";
  faces.forEach((face, index) => {
    const [x0, y0, x1, y1] = face.face.box.map((v) => v * scale);
    const name = face.decision === "match" ? face.candidates[0].person_id : "unknown";
    draw.strokeStyle = draw.fillStyle = face.decision === "match" ? "#1a7f37" : "#c9342b";
    draw.strokeRect(x0, y0, x1 - x0, y1 - y0);
    draw.fillText(`${index + 1}. ${name}`, x0, Math.max(14, y0 - 4));
  });
  canvas.dataset.names = faces.map((f) => (f.decision === "match" ? f.candidates[0].person_id : "unknown")).join(",");
  return canvas;
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
