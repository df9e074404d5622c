// The page to draw on: strokes on a canvas (pointer events: mouse, touch, pen), or a photo,
// sent to /api/read as an image file; the answer, its probabilities, the digits' boxes and
// the 28x28 images the model saw are shown beside it.
"use strict";

const DEBOUNCE_MS = 250; // quiet time before the drawing is read again
const STROKE = 1 / 14; // the pen's width, of the canvas's height: about MNIST's strokes

const surface = document.getElementById("surface");
const canvas = document.getElementById("canvas");
const context = canvas.getContext("2d");
const boxes = document.getElementById("boxes");
const hint = document.getElementById("hint");
const answerOut = document.getElementById("answer");
const statusOut = document.getElementById("status");
const announce = document.getElementById("announce");
const errorOut = document.getElementById("error");
const bars = document.getElementById("bars");
const seen = document.getElementById("seen");
const fileInput = document.getElementById("file");

const state = {
  mode: "digit",
  strokes: [], // each a list of [x, y] in CSS pixels of the canvas
  current: null, // the stroke being drawn
  photo: null, // {file, bitmap}: bitmap is null for a file the browser cannot show
  timer: null,
  sent: 0, // requests sent: only the latest one's answer is shown
};

function resize() {
  const ratio = Math.min(2, window.devicePixelRatio || 1);
  canvas.width = Math.round(canvas.clientWidth * ratio);
  canvas.height = Math.round(canvas.clientHeight * ratio);
  redraw();
}

function scale() {
  return canvas.width / canvas.clientWidth;
}

function redraw() {
  context.fillStyle = "#fff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  if (state.photo && state.photo.bitmap) {
    const fit = photoFit();
    context.drawImage(state.photo.bitmap, fit.x, fit.y, fit.width, fit.height);
  }
  context.strokeStyle = "#000";
  context.fillStyle = "#000";
  context.lineCap = "round";
  context.lineJoin = "round";
  context.lineWidth = canvas.height * STROKE;
  for (const stroke of state.strokes) draw(stroke);
  hint.hidden = state.strokes.length > 0 || state.photo !== null;
}

function draw(stroke) {
  const s = scale();
  context.beginPath();
  if (stroke.length === 1) {
    context.arc(stroke[0][0] * s, stroke[0][1] * s, context.lineWidth / 2, 0, 2 * Math.PI);
    context.fill();
    return;
  }
  context.moveTo(stroke[0][0] * s, stroke[0][1] * s);
  for (const [x, y] of stroke.slice(1)) context.lineTo(x * s, y * s);
  context.stroke();
}

function point(event) {
  const rect = canvas.getBoundingClientRect();
  return [event.clientX - rect.left, event.clientY - rect.top];
}

canvas.addEventListener("pointerdown", (event) => {
  if (event.pointerType === "mouse" && event.button !== 0) return;
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  if (state.photo) {
    state.photo = null; // drawing starts a new drawing
    state.strokes = [];
  }
  state.current = [point(event)];
  state.strokes.push(state.current);
  redraw();
});

canvas.addEventListener("pointermove", (event) => {
  if (!state.current) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const each of events.length ? events : [event]) state.current.push(point(each));
  redraw();
  schedule();
});

function endStroke() {
  if (!state.current) return;
  state.current = null;
  schedule();
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

function schedule() {
  clearTimeout(state.timer);
  state.timer = setTimeout(read, DEBOUNCE_MS);
}

function clearAll() {
  state.strokes = [];
  state.current = null;
  state.photo = null;
  fileInput.value = "";
  redraw();
  show(null);
}

function undo() {
  if (state.photo) return clearAll();
  state.strokes.pop();
  state.current = null;
  redraw();
  if (state.strokes.length) schedule();
  else show(null);
}

document.getElementById("clear").addEventListener("click", clearAll);
document.getElementById("undo").addEventListener("click", undo);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") clearAll();
  else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
    event.preventDefault();
    undo();
  }
});

for (const radio of document.querySelectorAll('input[name="mode"]')) {
  radio.addEventListener("change", () => {
    state.mode = radio.value;
    surface.className = `surface ${state.mode}`;
    document.querySelector("h1").textContent = state.mode === "number" ? "Write a number" : "Write a digit";
    clearAll();
    resize();
  });
}

// Photos: the file picker and drag and drop.
document.querySelector(".file").addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    fileInput.click();
  }
});
fileInput.addEventListener("change", () => fileInput.files[0] && usePhoto(fileInput.files[0]));
surface.addEventListener("dragover", (event) => {
  event.preventDefault();
  surface.classList.add("dragging");
});
surface.addEventListener("dragleave", () => surface.classList.remove("dragging"));
surface.addEventListener("drop", (event) => {
  event.preventDefault();
  surface.classList.remove("dragging");
  const file = event.dataTransfer.files[0];
  if (file) usePhoto(file);
});

async function usePhoto(file) {
  state.strokes = [];
  state.photo = { file, bitmap: null };
  try {
    state.photo.bitmap = await createImageBitmap(file);
  } catch {
    // Not an image the browser can show: the server says what is wrong with it.
  }
  redraw();
  read();
}

function photoFit() {
  // Where the photo is drawn, in canvas pixels: as large as fits, centred.
  const { bitmap } = state.photo;
  const fitted = Math.min(canvas.width / bitmap.width, canvas.height / bitmap.height);
  const width = bitmap.width * fitted;
  const height = bitmap.height * fitted;
  return { x: (canvas.width - width) / 2, y: (canvas.height - height) / 2, width, height };
}

function drawing() {
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

async function read() {
  clearTimeout(state.timer);
  if (!state.photo && !state.strokes.length) return show(null);
  const number = ++state.sent;
  const body = state.photo ? state.photo.file : await drawing();
  statusOut.textContent = "Reading…";
  let response;
  try {
    response = await fetch(`/api/read?mode=${state.mode}`, {
      method: "POST",
      headers: { "Content-Type": body.type || "application/octet-stream" },
      body,
    });
  } catch {
    if (number === state.sent) fail("The page's own server does not answer: is python -m pipeline.demo still running?");
    return;
  }
  const result = await response.json().catch(() => ({}));
  if (number !== state.sent) return; // a later drawing is being read
  if (!response.ok) return fail(result.error || `The page's server failed (${response.status}): see its console.`);
  show(result);
}

function fail(message) {
  show(null);
  errorOut.textContent = message;
  answerOut.textContent = "—";
  statusOut.textContent = "";
}

function percent(value) {
  return `${Math.round(100 * value)} %`;
}

function show(result) {
  errorOut.textContent = "";
  bars.replaceChildren();
  seen.replaceChildren();
  boxes.replaceChildren();
  answerOut.classList.remove("refused");
  if (!result) {
    answerOut.textContent = "nothing yet";
    statusOut.textContent = "";
    announce.textContent = "";
    return;
  }
  const { answer } = result;
  const what = state.mode === "number" ? "a number" : "a digit";
  if (answer.rejected) {
    answerOut.textContent = `not ${what}`;
    answerOut.classList.add("refused");
    statusOut.textContent = `The model's reason: ${answer.reason}`;
  } else {
    answerOut.textContent = state.mode === "number" ? answer.number : String(answer.digit);
    statusOut.textContent = `${percent(answer.confidence)} sure`;
  }
  announce.textContent = `The model reads ${answerOut.textContent}. ${statusOut.textContent}`;
  if (answer.probabilities) {
    const best = answer.probabilities.indexOf(Math.max(...answer.probabilities));
    answer.probabilities.forEach((p, digit) => bars.append(bar(String(digit), p, digit === best)));
  }
  for (const digit of answer.digits || []) {
    bars.append(bar(digit.digit === null ? "?" : String(digit.digit), digit.confidence, false));
    boxes.append(box(digit, result.size));
  }
  result.seen.forEach((source, index) => {
    const image = new Image(28, 28);
    image.src = source;
    image.alt = `the ${index + 1}${["st", "nd", "rd"][index] || "th"} 28 by 28 image the model saw`;
    seen.append(image);
  });
}

function bar(label, value, top) {
  const item = document.createElement("li");
  item.className = top ? "top" : "";
  item.innerHTML = '<span class="digit"></span><span class="bar"><span class="fill"></span></span><span class="value"></span>';
  item.querySelector(".digit").textContent = label;
  item.querySelector(".fill").style.width = `${(100 * value).toFixed(1)}%`;
  item.querySelector(".value").textContent = percent(value);
  item.setAttribute("aria-label", `${label}: ${percent(value)}`);
  return item;
}

function box(digit, size) {
  // The box is in the sent image's pixels: the canvas itself, or the photo fitted into it.
  const fit = state.photo && state.photo.bitmap ? photoFit() : { x: 0, y: 0, width: canvas.width, height: canvas.height };
  const [x, y, width, height] = digit.box;
  const across = fit.width / size[0] / scale();
  const down = fit.height / size[1] / scale();
  const element = document.createElement("div");
  element.className = "box";
  element.style.left = `${fit.x / scale() + x * across}px`;
  element.style.top = `${fit.y / scale() + y * down}px`;
  element.style.width = `${width * across}px`;
  element.style.height = `${height * down}px`;
  const label = document.createElement("span");
  label.textContent = digit.digit === null ? "?" : String(digit.digit);
  element.append(label);
  return element;
}

fetch("/api/model")
  .then((response) => response.json())
  .then((model) => {
    document.getElementById("source").textContent = `Answers from ${model.source}.`;
  })
  .catch(() => {});

window.addEventListener("resize", resize);
resize();
