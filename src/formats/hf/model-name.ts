/*
 * `general.name` as gguf-py's Metadata heuristics derive it: config.json `_name_or_path` when it
 * looks like a model id ("org/name" or "name"), else the folder name; then `id_to_title`.
 */

export function hfModelName(nameOrPath: unknown, dirName: string): string | undefined {
  if (typeof nameOrPath === "string" && nameOrPath.split("/").length - 1 <= 1) {
    const c = fullNameComponent(nameOrPath);
    if (c !== undefined) return idToTitle(c);
  }
  const c = fullNameComponent(dirName);
  return c === undefined ? undefined : idToTitle(c);
}

/** gguf-py `get_model_id_components(...)[0]`. */
function fullNameComponent(modelId: string): string | undefined {
  if (modelId.includes(" ")) return modelId;
  const slash = modelId.indexOf("/");
  return slash === -1 ? modelId : modelId.slice(slash + 1);
}

const isCased = (c: string): boolean => c.toLowerCase() !== c.toUpperCase();

/** Python `str.islower()`: has a cased character and none is upper case. */
function pyIsLower(w: string): boolean {
  return [...w].some(isCased) && w === w.toLowerCase();
}

/** Python `str.title()`: upper-case a cased character after an uncased one, lower-case the rest. */
function pyTitle(w: string): string {
  let out = "";
  let prevCased = false;
  for (const c of w) {
    out += prevCased ? c.toLowerCase() : c.toUpperCase();
    prevCased = isCased(c);
  }
  return out;
}

/** gguf-py `Metadata.id_to_title`. */
export function idToTitle(s: string): string {
  return s
    .trim()
    .replaceAll("-", " ")
    .split(/\s+/)
    .filter((w) => w.length > 0)
    .map((w) => (pyIsLower(w) && !/^(v\d+(?:\.\d+)*|\d.*)$/.test(w) ? pyTitle(w) : w))
    .join(" ");
}
