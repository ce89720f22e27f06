// The study page: a rater token kept in this browser, then question after question; the two
// videos start together once both can play and restart together whenever the left one ends.
"use strict";
const left = document.getElementById("left");
const right = document.getElementById("right");
const buttons = [document.getElementById("choose-left"), document.getElementById("choose-right")];
const progress = document.getElementById("progress");
let token = localStorage.getItem("preference-token");
let question = null;

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers["Authorization"] = "Bearer " + token;
  try {
    const response = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
    return { status: response.status, data: await response.json().catch(() => ({})) };
  } catch (err) {  // the server is unreachable
    return { status: 0, data: {} };
  }
}

function report(text) {
  const error = document.getElementById("error");
  error.textContent = text;
  error.hidden = !text;
}

async function rater() {
  if (token && (await api("GET", "/api/next")).status !== 401) return true;
  const { status, data } = await api("POST", "/api/raters");
  if (status !== 201) {  // 429: too many new raters from this address
    report("Could not start the study (" + status + "): " + (data.error || "reload the page to try again."));
    return false;
  }
  token = data.token;
  localStorage.setItem("preference-token", token);
  return true;
}

function restart() {
  for (const video of [left, right]) { video.currentTime = 0; video.play(); }
}

function whenPlayable(video) {
  return new Promise((resolve) => {
    if (video.readyState >= 3) resolve();
    else video.addEventListener("canplaythrough", resolve, { once: true });
  });
}

async function next() {
  buttons.forEach((b) => (b.disabled = true));
  const { status, data } = await api("GET", "/api/next");
  if (status !== 200) {
    report("Could not load the next question (" + status + "): reload the page to try again.");
    return;
  }
  if (data.question === null) {
    document.getElementById("pair").hidden = true;
    document.getElementById("done").hidden = false;
    progress.textContent = data.answered + " of " + data.total + " answered";
    return;
  }
  question = data.question;
  progress.textContent = "Question " + (data.answered + 1) + " of " + data.total;
  left.src = data.left;
  right.src = data.right;
  await Promise.all([whenPlayable(left), whenPlayable(right)]);
  restart();
  buttons.forEach((b) => (b.disabled = false));
  document.body.dataset.question = question;  // for the browser test: the pair is on screen
}

async function choose(choice) {
  buttons.forEach((b) => (b.disabled = true));
  const { status } = await api("POST", "/api/answers", { question, choice });
  if (status !== 201 && status !== 409) {
    report("Could not save the answer (" + status + "): please choose again.");
    buttons.forEach((b) => (b.disabled = false));
    return;
  }
  report("");
  await next();
}

// both play as one: restart together, and pull the right one back whenever it drifts
left.addEventListener("ended", restart);
left.addEventListener("timeupdate", () => {
  if (!right.paused && Math.abs(right.currentTime - left.currentTime) > 0.15) right.currentTime = left.currentTime;
});
buttons[0].addEventListener("click", () => choose("left"));
buttons[1].addEventListener("click", () => choose("right"));
rater().then((started) => started && next());
