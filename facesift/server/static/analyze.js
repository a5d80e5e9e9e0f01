// The page's "Analyse a photo" section: POST /v1/analyze, boxes on the photo, one line per face.
// Uses the helpers of app.js ($, api, form, dropZone, showPhoto, element, say), loaded before it.
"use strict";

const analysis = { file: null };

function describeFace(face, index) {
  const parts = [`Face ${index + 1}`];
  if (face.age) parts.push(`age about ${Math.round(face.age.years)} (${Math.round(face.age.low)}-${Math.round(face.age.high)})`);
  if (face.gender) parts.push(`${face.gender.label} (${Math.round(100 * face.gender.probability)} %)`);
  if (face.emotion) parts.push(`${face.emotion.dominant} (${Math.round(100 * face.emotion.probabilities[face.emotion.dominant])} %)`);
  if (face.liveness) parts.push(face.liveness.live ? "live face" : "possible spoof (photo of a photo or screen)");
  if (face.race) parts.push(`race group ${face.race.dominant} (audit aid)`);
  return parts.join(", ") + (face.reasons.length ? `. Note: ${face.reasons.join("; ")}` : "");
}

async function analyse() {
  const out = $("#analyze-result");
  if (!analysis.file) { say(out, "Choose a photo to analyse.", "error"); return; }
  say(out, "Analysing…");
  const fields = { image: analysis.file };
  if ($("#analyze-crop").checked) fields.detector = "none";
  try {
    const result = await api("POST", "/v1/analyze", form(fields));
    await showPhoto($("#analyze-drop canvas"), analysis.file, result.faces.map((f) => f.face));
    out.innerHTML = "";
    out.append(element("p", { id: "analyze-summary", className: "outcome " + (result.faces.length ? "good" : "bad") },
      result.faces.length ? `${result.faces.length} face(s) analysed.` : "No face was found in this photo."));
    const list = element("ul", { className: "outcomes" });
    result.faces.forEach((face, index) => list.append(element("li", { className: "analyze-face" }, describeFace(face, index))));
    out.append(list, element("p", { className: "muted" },
      "Apparent age, gender and emotion are estimates; liveness from one photo is not proof against every attack."));
  } catch (error) {
    say(out, error.message, "error");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  dropZone($("#analyze-drop"), () => $("#analyze-result"), (files) => {
    if (!files.length) return;
    analysis.file = files[0];
    $("#analyze-drop").classList.add("filled");
    showPhoto($("#analyze-drop canvas"), files[0]);
  });
  $("#analyze-btn").addEventListener("click", analyse);
});
