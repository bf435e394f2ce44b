// Copy buttons: <button data-copy="ID"> copies the value of the field #ID and says so in #ID-copied.
// Without scripts the buttons stay hidden and the fields' text can be selected and copied by hand.
"use strict";
for (const button of document.querySelectorAll("button[data-copy]")) {
  const field = document.getElementById(button.dataset.copy);
  const said = document.getElementById(button.dataset.copy + "-copied");
  if (!field) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(field.value);
      if (said) said.textContent = "Copied";
    } catch {
      field.focus();
      field.select();
      if (said) said.textContent = "Selected: press Ctrl+C to copy";
    }
  });
}
