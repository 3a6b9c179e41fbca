// The reader's page: figures, reading tools, marks and the panel events the server times.
"use strict";
(function () {
  const form = document.getElementById("answer");
  if (!form) return;
  const assignment = Number(form.elements.assignment_id.value);
  const csrf = form.elements.csrf_token.value;
  const marks = [];
  let marking = false;

  function post(panel, action) {
    fetch("/api/events", {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify({assignment_id: assignment, panel: panel, action: action}),
    });
  }

  // ---- marks ------------------------------------------------------------------------------
  const count = document.getElementById("mark-count");
  function addMark(mark) {
    if (!marking || marks.length >= 20) return;
    marks.push(mark);
    showMarks();
  }
  function showMarks() {
    form.elements.marks.value = JSON.stringify(marks);
    count.textContent = marks.length + (marks.length === 1 ? " mark" : " marks");
    document.dispatchEvent(new Event("marks-changed"));
  }
  function setMarking(on) {
    const button = document.getElementById("mark-mode");
    if (!button) return;
    marking = on;
    document.body.classList.toggle("marking", on);
    button.setAttribute("aria-pressed", String(on));
    button.textContent = on ? "Marking: click the image (m to stop)" : "Mark what convinced you (m)";
  }
  const markButton = document.getElementById("mark-mode");
  if (markButton) markButton.addEventListener("click", () => setMarking(!marking));
  const clear = document.getElementById("clear-marks");
  if (clear) clear.addEventListener("click", () => {
    marks.length = 0;
    showMarks();
  });
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, textarea, select")) return;
    if (e.key === "m" && markButton) setMarking(!marking);
  });

  // ---- panels opened and closed -------------------------------------------------------------
  document.querySelectorAll("details[data-panel]").forEach((d) => {
    if (d.open) post(d.dataset.panel, "open");
    d.addEventListener("toggle", () => post(d.dataset.panel, d.open ? "open" : "close"));
  });

  // ---- overlay switches ---------------------------------------------------------------------
  const overlays = {};  // target -> {on, opacity, apply()}
  function overlay(target, apply) {
    const toggle = document.querySelector(`.overlay-toggle[data-target="${target}"]`);
    const slider = document.querySelector(`.overlay-opacity[data-target="${target}"]`);
    if (!toggle) return null;
    const state = {on: toggle.checked, opacity: Number(slider.value) / 100, apply: apply};
    toggle.addEventListener("change", () => {
      state.on = toggle.checked;
      post(`heatmaps:${target}`, state.on ? "open" : "close");
      state.apply();
    });
    slider.addEventListener("input", () => { state.opacity = Number(slider.value) / 100; state.apply(); });
    state.flip = () => { toggle.checked = !toggle.checked; toggle.dispatchEvent(new Event("change")); };
    overlays[target] = state;
    if (state.on) post(`heatmaps:${target}`, "open");
    return state;
  }

  // ---- plotly figures (contributions, attention) and the ECG print --------------------------
  document.querySelectorAll(".figure[data-figure]").forEach((el) =>
    fetch(el.dataset.figure).then((r) => r.json()).then((f) => {
      el.style.height = `${(f.layout && f.layout.height) || 400}px`;  // the builder's own height
      Plotly.newPlot(el, f.data, f.layout, {responsive: true, displaylogo: false});
    }));

  const ecg = document.getElementById("ecg");
  if (ecg) {
    const src = ecg.dataset.heatFigure || ecg.dataset.figure;
    fetch(src).then((r) => r.json()).then((f) => {
      Plotly.newPlot(ecg, f.data, f.layout, {displaylogo: false}).then(() => {
        const shading = f.data.map((t, i) => ((t.meta || {}).kind === "shading" ? i : -1))
          .filter((i) => i >= 0);
        const state = overlay("ecg", () => {
          if (shading.length) {
            Plotly.restyle(ecg, {visible: state.on, opacity: state.opacity * 2}, shading);
          }
        });
        if (state) state.apply();
        ecg.on("plotly_click", (ev) => {
          const p = ev.points[0];
          const meta = (p.data.meta || {});
          if (meta.kind === "lead") addMark({modality: "ecg", lead: meta.lead, t: Number(p.x)});
        });
      });
    });
  }

  // ---- echo: play / pause, frame step, overlay --------------------------------------------
  document.querySelectorAll(".echo-view").forEach((box) => {
    const plain = box.querySelector("video.plain");
    const heat = box.querySelector("video.heat");
    const fps = Number(box.dataset.fps) || 30;
    const label = box.querySelector(".frame-no");
    const frame = () => Math.floor(plain.currentTime * fps);
    const show = () => { label.textContent = `frame ${frame() + 1}`; };
    const sync = () => { if (heat) heat.currentTime = plain.currentTime; };
    plain.addEventListener("timeupdate", show);
    // a play() cut short by a pause rejects its promise: expected when stepping frames
    const play = (v) => v.play().catch(() => {});
    plain.addEventListener("play", () => { if (heat) { sync(); play(heat); } });
    plain.addEventListener("pause", () => { if (heat) { heat.pause(); sync(); } });
    plain.addEventListener("seeked", sync);
    if (heat) heat.addEventListener("loadeddata", () => { sync(); if (!plain.paused) play(heat); });
    const toggle = () => (plain.paused ? play(plain) : plain.pause());
    const step = (n) => {
      plain.pause();
      const last = Math.max(0, (Number(box.dataset.frames) || 1) - 1);
      const next = Math.min(last, Math.max(0, frame() + n));
      plain.currentTime = (next + 0.5) / fps;
      show();
    };
    box.querySelector(".play").addEventListener("click", toggle);
    box.querySelectorAll(".step").forEach((b) =>
      b.addEventListener("click", () => step(Number(b.dataset.step))));
    const state = overlay(`echo-${box.dataset.view}`, () => {
      heat.style.display = state.on ? "" : "none";
      heat.style.opacity = String(state.opacity);
    });
    if (state) state.apply();
    box.addEventListener("keydown", (e) => {
      if (e.key === " ") { e.preventDefault(); toggle(); }
      if (e.key === ",") step(-1);
      if (e.key === ".") step(1);
      if (e.key === "o" && state) state.flip();
    });
    (heat || plain).parentElement.addEventListener("click", (e) => {
      const r = plain.getBoundingClientRect();
      const sx = (plain.videoWidth || r.width) / r.width;
      const sy = (plain.videoHeight || r.height) / r.height;
      addMark({modality: "echo", view: box.dataset.view, frame: frame(),
               x: (e.clientX - r.left) * sx, y: (e.clientY - r.top) * sy});
    });
  });

  // ---- chest X-ray: zoom, pan, window / level, overlay ----------------------------------------
  const canvas = document.getElementById("cxr-canvas");
  if (canvas) {
    const ctx = canvas.getContext("2d");
    const img = new Image();
    const heatImg = canvas.dataset.heat ? new Image() : null;
    const view = {zoom: 1, x: 0, y: 0};
    const tools = canvas.closest("details").querySelector(".tools");
    const ww = tools.querySelector(".ww");
    const wl = tools.querySelector(".wl");
    let pixels = null;  // the radiograph at the current window / level
    let state = null;

    function windowed() {
      const off = document.createElement("canvas");
      off.width = img.naturalWidth;
      off.height = img.naturalHeight;
      const o = off.getContext("2d");
      o.drawImage(img, 0, 0);
      const data = o.getImageData(0, 0, off.width, off.height);
      const width = Number(ww.value);
      const low = Number(wl.value) - width / 2;
      for (let i = 0; i < data.data.length; i += 4) {
        const v = Math.min(255, Math.max(0, ((data.data[i] - low) / width) * 255));
        data.data[i] = data.data[i + 1] = data.data[i + 2] = v;
      }
      o.putImageData(data, 0, 0);
      pixels = off;
    }
    function draw() {
      if (!pixels) return;
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.fillStyle = "black";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      const fit = Math.min(canvas.width / pixels.width, canvas.height / pixels.height);
      const s = fit * view.zoom;
      ctx.setTransform(s, 0, 0, s, view.x, view.y);
      ctx.drawImage(pixels, 0, 0);
      if (heatImg && state && state.on && heatImg.complete) {
        ctx.globalAlpha = state.opacity;
        ctx.drawImage(heatImg, 0, 0, pixels.width, pixels.height);
        ctx.globalAlpha = 1;
      }
      ctx.strokeStyle = "#d35400";
      ctx.lineWidth = 2 / s;
      marks.filter((m) => m.modality === "cxr").forEach((m) => {
        ctx.beginPath();
        ctx.arc(m.x, m.y, 8 / s, 0, 2 * Math.PI);
        ctx.stroke();
      });
      canvas.dataset.zoom = view.zoom.toFixed(3);
    }
    function zoomBy(f) { view.zoom = Math.min(8, Math.max(1, view.zoom * f)); draw(); }
    function toImage(e) {
      const r = canvas.getBoundingClientRect();
      const cx = ((e.clientX - r.left) * canvas.width) / r.width;
      const cy = ((e.clientY - r.top) * canvas.height) / r.height;
      const s = Math.min(canvas.width / pixels.width, canvas.height / pixels.height) * view.zoom;
      return {x: (cx - view.x) / s, y: (cy - view.y) / s};
    }
    img.addEventListener("load", () => {
      const aspect = img.naturalHeight / img.naturalWidth;
      canvas.height = Math.round(canvas.width * aspect);
      windowed();
      draw();
    });
    img.src = canvas.dataset.src;
    if (heatImg) { heatImg.addEventListener("load", draw); heatImg.src = canvas.dataset.heat; }
    state = overlay("cxr", draw);
    document.addEventListener("marks-changed", draw);
    ww.addEventListener("input", () => { windowed(); draw(); });
    wl.addEventListener("input", () => { windowed(); draw(); });
    tools.querySelectorAll(".zoom").forEach((b) =>
      b.addEventListener("click", () => zoomBy(Number(b.dataset.zoom))));
    tools.querySelector(".reset").addEventListener("click", () => {
      view.zoom = 1; view.x = 0; view.y = 0; ww.value = 255; wl.value = 128; windowed(); draw();
    });
    canvas.addEventListener("wheel", (e) => { e.preventDefault(); zoomBy(e.deltaY < 0 ? 1.1 : 0.9); });
    let drag = null;
    canvas.addEventListener("mousedown", (e) => { drag = {x: e.clientX, y: e.clientY, moved: false}; });
    canvas.addEventListener("mousemove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 2) drag.moved = true;
      view.x += dx; view.y += dy; drag.x = e.clientX; drag.y = e.clientY;
      draw();
    });
    canvas.addEventListener("mouseup", (e) => {
      if (drag && !drag.moved && pixels) addMark({modality: "cxr", ...toImage(e)});
      drag = null;
    });
    canvas.addEventListener("keydown", (e) => {
      const pan = {ArrowLeft: [20, 0], ArrowRight: [-20, 0], ArrowUp: [0, 20], ArrowDown: [0, -20]};
      if (e.key === "+" || e.key === "=") zoomBy(1.25);
      else if (e.key === "-") zoomBy(0.8);
      else if (e.key === "o" && state) state.flip();
      else if (pan[e.key]) { e.preventDefault(); view.x += pan[e.key][0]; view.y += pan[e.key][1]; draw(); }
    });
  }
})();
