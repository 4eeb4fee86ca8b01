// The score and band as the items are answered: the console scores with shared/instruments (POST /score/...), so
// this page holds no scoring rule. Without scripts the form still saves, and the service scores it.
(function () {
  const form = document.getElementById("assessment");
  const shown = document.getElementById("score-so-far");
  const safety = document.getElementById("safety-now");
  if (!form || !shown) return;
  const instrument = form.dataset.instrument;
  const items = form.querySelectorAll("fieldset.item").length;
  form.addEventListener("change", async function () {
    const answers = [];
    for (let n = 1; n <= items; n++) {
      const picked = form.querySelector(`input[name="item-${n}"]:checked`);
      answers.push(picked ? Number(picked.value) : null);
    }
    const reply = await fetch(`/score/${instrument}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ answers: answers }),
    });
    if (!reply.ok) return;
    const score = await reply.json();
    shown.textContent = score.words;
    safety.textContent = score.safety_item_endorsed
      ? "Item 9 is above 0: assess suicide risk now. Saving raises a safety flag that blocks dosing until a clinician acknowledges it."
      : "";
    safety.className = score.safety_item_endorsed ? "alert" : "";
  });
})();
