// Submit the end-session form at once; without scripts the user presses its button.
document.getElementById("end-session").submit();
