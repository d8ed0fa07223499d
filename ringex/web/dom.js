// DOM shorthands used by every module.
export const $ = (id) => document.getElementById(id);

// the header's line for the last refusal that belongs to no request
export function notice(text) {
  $("notice").textContent = text;
}
