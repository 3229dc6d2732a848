"use strict";
// The page: draw or send a picture, see what was read over it, confirm or correct.
// No framework and no build step; talks only to this server's /api.
(function () {
  const pad = document.getElementById("pad");
  const ctx = pad.getContext("2d");
  const auto = document.getElementById("auto");
  const statusLine = document.getElementById("status");
  const results = document.getElementById("results");
  const template = document.getElementById("reading-template");
  const LINE_WIDTH = 16;
  const READ_DELAY_MS = 700;
  const strokes = [];
  let current = null;
  let timer = null;
  let sequence = 0;
  let previewUrl = null;

  function setStatus(text, isError) {
    statusLine.textContent = text;
    statusLine.classList.toggle("error", Boolean(isError));
  }

  // --- drawing ------------------------------------------------------------------------
  function clearPad() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, pad.width, pad.height);
  }

  function drawStroke(points) {
    ctx.strokeStyle = "#111";
    ctx.fillStyle = "#111";
    ctx.lineWidth = LINE_WIDTH;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    if (points.length === 1) {
      ctx.beginPath();
      ctx.arc(points[0][0], points[0][1], LINE_WIDTH / 2, 0, 2 * Math.PI);
      ctx.fill();
      return;
    }
    ctx.beginPath();
    ctx.moveTo(points[0][0], points[0][1]);
    for (let i = 1; i < points.length; i++) ctx.lineTo(points[i][0], points[i][1]);
    ctx.stroke();
  }

  function redraw() {
    clearPad();
    strokes.forEach(drawStroke);
  }

  function point(event) {
    const rect = pad.getBoundingClientRect();
    return [
      (event.clientX - rect.left) * pad.width / rect.width,
      (event.clientY - rect.top) * pad.height / rect.height,
    ];
  }

  function scheduleRead() {
    clearTimeout(timer);
    if (auto.checked && strokes.length) timer = setTimeout(readDrawing, READ_DELAY_MS);
  }

  pad.addEventListener("pointerdown", function (event) {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    event.preventDefault();
    clearTimeout(timer);
    pad.setPointerCapture(event.pointerId);
    current = [point(event)];
    strokes.push(current);
    drawStroke(current);
  });

  pad.addEventListener("pointermove", function (event) {
    if (!current) return;
    event.preventDefault();
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    (events.length ? events : [event]).forEach(function (e) { current.push(point(e)); });
    drawStroke(current.slice(-1 - (events.length || 1)));
  });

  function endStroke() {
    if (!current) return;
    current = null;
    scheduleRead();
  }
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);

  document.getElementById("undo").addEventListener("click", function () {
    strokes.pop();
    redraw();
    scheduleRead();
  });
  document.getElementById("clear").addEventListener("click", function () {
    clearTimeout(timer);
    strokes.length = 0;
    redraw();
    results.textContent = "";
    setStatus("");
  });
  document.getElementById("read-drawing").addEventListener("click", readDrawing);

  function readDrawing() {
    clearTimeout(timer);
    if (!strokes.length) {
      setStatus("Write a number first.", true);
      return;
    }
    pad.toBlob(function (blob) {
      if (blob) send(blob, "drawing.png", true);
    }, "image/png");
  }

  // --- files ----------------------------------------------------------------------------
  function sendFile(file) {
    if (!file) return;
    send(file, file.name || "upload", /^image\/(jpeg|png|gif|webp|bmp)$/.test(file.type));
  }
  ["file", "camera"].forEach(function (id) {
    const input = document.getElementById(id);
    input.addEventListener("change", function () {
      sendFile(input.files[0]);
      input.value = "";
    });
  });
  const drop = document.getElementById("drop");
  ["dragenter", "dragover"].forEach(function (name) {
    drop.addEventListener(name, function (event) {
      event.preventDefault();
      drop.classList.add("over");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    drop.addEventListener(name, function () { drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (event) {
    event.preventDefault();
    sendFile(event.dataTransfer.files[0]);
  });
  // A file dropped beside the zone must not make the browser leave the page.
  window.addEventListener("dragover", function (event) { event.preventDefault(); });
  window.addEventListener("drop", function (event) { event.preventDefault(); });

  // --- reading ------------------------------------------------------------------------
  async function send(blob, name, showPicture) {
    const mine = ++sequence;
    setStatus("Reading…");
    const form = new FormData();
    form.append("file", blob, name);
    let response;
    try {
      response = await fetch("/api/read", { method: "POST", body: form, credentials: "same-origin" });
    } catch (err) {
      setStatus("The server cannot be reached; try again.", true);
      return;
    }
    const body = await response.json().catch(function () { return {}; });
    if (mine !== sequence) return; // a newer reading was asked for meanwhile
    if (!response.ok) {
      setStatus(body.error || "The server answered " + response.status + ".", true);
      return;
    }
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = showPicture ? URL.createObjectURL(blob) : null;
    const pages = body.pages || [body];
    results.textContent = "";
    pages.forEach(function (page) { results.appendChild(card(page, pages.length, previewUrl)); });
    const found = pages.filter(function (p) { return p.digits.length; }).length;
    setStatus(found ? "Read in " + Math.round(body.elapsed_ms) + " ms. Tap a digit to change it."
      : "No digits found: type the number below and save it.");
  }

  function digitIndexes(text) {
    const indexes = [];
    for (let i = 0; i < text.length; i++) if (text[i] >= "0" && text[i] <= "9") indexes.push(i);
    return indexes;
  }

  function card(page, pageCount, picture) {
    const node = template.content.firstElementChild.cloneNode(true);
    node.dataset.readingId = page.reading_id;
    const stage = node.querySelector(".stage");
    stage.style.aspectRatio = page.width + " / " + page.height;
    const img = node.querySelector("img");
    if (picture && pageCount === 1) {
      img.src = picture;
      img.hidden = false;
      img.addEventListener("error", function () { img.hidden = true; });
    }
    const boxes = node.querySelector(".boxes");
    const keypad = node.querySelector(".keypad");
    const text = node.querySelector(".text");
    const note = node.querySelector(".note");
    const confirmButton = node.querySelector(".confirm");
    const saveButton = node.querySelector(".save");
    if (pageCount > 1) node.querySelector(".page-label").textContent = "(page " + page.page + ")";
    text.value = page.text;
    text.rows = Math.max(1, page.text.split("\n").length);
    let selected = -1;

    const boxButtons = page.digits.map(function (digit, i) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "box" + (digit.doubtful ? " doubtful" : "");
      button.style.left = (100 * digit.box[0] / page.width) + "%";
      button.style.top = (100 * digit.box[1] / page.height) + "%";
      button.style.width = (100 * digit.box[2] / page.width) + "%";
      button.style.height = (100 * digit.box[3] / page.height) + "%";
      button.title = "read " + digit.label + " (" + Math.round(100 * digit.confidence) + " % sure)" +
        (digit.doubtful ? ", doubtful" : "") + ": tap to change";
      button.dataset.index = i;
      const label = document.createElement("span");
      label.textContent = digit.doubtful ? digit.label + "?" : String(digit.label);
      button.appendChild(label);
      button.addEventListener("click", function () { select(i); });
      boxes.appendChild(button);
      return button;
    });

    function select(i) {
      selected = i;
      boxButtons.forEach(function (b, j) { b.classList.toggle("selected", j === i); });
      keypad.textContent = "";
      for (let d = 0; d <= 9; d++) {
        const key = document.createElement("button");
        key.type = "button";
        key.textContent = String(d);
        key.dataset.digit = String(d);
        key.addEventListener("click", function () { setDigit(selected, String(d)); });
        keypad.appendChild(key);
      }
      keypad.hidden = false;
    }

    function setDigit(i, value) {
      const where = digitIndexes(text.value);
      if (i < 0 || i >= where.length) return;
      text.value = text.value.slice(0, where[i]) + value + text.value.slice(where[i] + 1);
      keypad.hidden = true;
      boxButtons.forEach(function (b) { b.classList.remove("selected"); });
      sync();
    }

    function sync() {
      const value = text.value;
      const where = digitIndexes(value);
      const changed = value.trim() !== page.text;
      if (where.length === boxButtons.length) {
        boxButtons.forEach(function (b, i) {
          const now = value[where[i]];
          const digit = page.digits[i];
          b.classList.toggle("changed", now !== String(digit.label));
          b.firstChild.textContent = now === String(digit.label) && digit.doubtful ? now + "?" : now;
        });
      }
      confirmButton.disabled = changed || !page.digits.length;
      saveButton.disabled = !changed || !where.length;
      note.textContent = "";
    }
    text.addEventListener("input", sync);
    sync();

    async function answer(path, payload) {
      note.className = "note";
      note.textContent = "Saving…";
      const options = { method: "POST", credentials: "same-origin", headers: {} };
      if (payload) {
        options.headers["Content-Type"] = "application/json";
        options.body = JSON.stringify(payload);
      }
      let response;
      try {
        response = await fetch("/api/readings/" + page.reading_id + path, options);
      } catch (err) {
        note.className = "note error";
        note.textContent = "The server cannot be reached; try again.";
        return;
      }
      const body = await response.json().catch(function () { return {}; });
      if (!response.ok) {
        note.className = "note error";
        note.textContent = body.error || "The server answered " + response.status + ".";
        return;
      }
      note.className = "note ok";
      note.textContent = body.status === "confirmed" ? "Thanks, confirmed."
        : "Thanks, saved: " + body.corrected_text.replace(/\n/g, " / ");
      node.dataset.status = body.status;
    }
    confirmButton.addEventListener("click", function () { answer("/confirm", null); });
    saveButton.addEventListener("click", function () { answer("/correction", { text: text.value }); });
    node.querySelector(".copy").addEventListener("click", function () {
      const value = text.value;
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(value).then(function () { note.textContent = "Copied."; },
          function () { note.textContent = "Select the text to copy it."; });
      } else {
        text.select();
        note.textContent = "Selected: copy it with your keyboard or menu.";
      }
    });
    return node;
  }

  // --- privacy ------------------------------------------------------------------------
  document.getElementById("forget").addEventListener("click", async function () {
    if (!window.confirm("Delete every picture and reading this browser sent?")) return;
    try {
      const response = await fetch("/api/forget", { method: "POST", credentials: "same-origin" });
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || String(response.status));
      results.textContent = "";
      setStatus("Forgotten: " + body.readings_deleted + " readings and " + body.images_deleted +
        " pictures deleted.");
    } catch (err) {
      setStatus("Could not forget: " + err.message, true);
    }
  });

  clearPad();
})();
