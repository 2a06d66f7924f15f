"use strict";

(function () {
  const GENERIC_ERROR = "The username or password is incorrect.";
  const form = document.getElementById("spa-sign-in-form");
  const username = document.getElementById("spa-username");
  const password = document.getElementById("spa-password");
  const button = document.getElementById("spa-sign-in");
  const errorBox = document.getElementById("spa-error");
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  async function signIn(event) {
    event.preventDefault();
    errorBox.hidden = true;
    button.disabled = true;
    try {
      const response = await fetch("/api/login", {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          "Accept": "application/json",
          "X-CSRF-Token": csrfMeta ? csrfMeta.content : "",
        },
        body: JSON.stringify({ username: username.value, password: password.value }),
      });
      if (response.status === 200) {
        window.location.assign("/dashboard");
        return;
      }
      let message = GENERIC_ERROR;
      if (response.status !== 401) {
        try {
          const body = await response.json();
          if (body && typeof body.message === "string") {
            message = body.message;
          }
        } catch (ignored) {
          // A non-JSON error body still gets the generic message.
        }
      }
      password.value = "";
      showError(message);
    } catch (networkError) {
      showError("The portal could not be reached. Please try again.");
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener("submit", signIn);
})();
