import { isPlainObject } from "../json.js";
import { GgufValueType, type Metadata } from "../metadata.js";

/*
 * Special-token metadata as gguf-py's SpecialVocab derives it (simplified: the TemplateProcessing
 * heuristics only decide add_bos/add_eos):
 *  1. `<type>_token` of tokenizer_config.json (a string or {content}) → id of the first matching
 *     entry of tokenizer.json `added_tokens`;
 *  2. else config.json `<type>_token_id` when an integer;
 *  3. else (slimlm addition) generation_config.json `<type>_token_id` (first of a list).
 * Ids >= vocab size are skipped, as the converter does.
 */

const TYPES = ["bos", "eos", "unk", "sep", "pad", "mask"] as const;
type TokenType = (typeof TYPES)[number];

const ID_KEY: Record<TokenType, string> = {
  bos: "tokenizer.ggml.bos_token_id",
  eos: "tokenizer.ggml.eos_token_id",
  unk: "tokenizer.ggml.unknown_token_id",
  // NOTE: "seperator" is GGUF's spelling.
  sep: "tokenizer.ggml.seperator_token_id",
  pad: "tokenizer.ggml.padding_token_id",
  mask: "tokenizer.ggml.mask_token_id",
};

export interface SpecialTokenSources {
  readonly config: Readonly<Record<string, unknown>>;
  readonly tokenizerJson: unknown;
  readonly tokenizerConfig: unknown;
  readonly generationConfig: unknown;
  readonly vocabSize: number | undefined;
  /** chat_template.jinja, or chat_template.json's "chat_template": used when tokenizer_config.json has none. */
  readonly chatTemplateFile?: unknown;
}

export function addSpecialTokens(md: Metadata, src: SpecialTokenSources): void {
  const ids = new Map<TokenType, number>();
  const set = (t: TokenType, id: unknown): void => {
    if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0 || id > 0xffffffff) return;
    if (src.vocabSize !== undefined && id >= src.vocabSize) return;
    if (!ids.has(t)) ids.set(t, id);
  };
  const tc = isPlainObject(src.tokenizerConfig) ? src.tokenizerConfig : undefined;
  const tj = isPlainObject(src.tokenizerJson) ? src.tokenizerJson : undefined;
  const added = tj !== undefined && Array.isArray(tj.added_tokens) ? tj.added_tokens.filter(isPlainObject) : [];
  const contentOf = (t: TokenType): string | undefined => {
    const e = tc?.[`${t}_token`];
    if (typeof e === "string") return e;
    if (isPlainObject(e) && typeof e.content === "string") return e.content;
    return undefined;
  };

  const add = new Map<"bos" | "eos" | "sep", boolean>();
  if (tj !== undefined) templateAddFlags(tj, contentOf("bos"), contentOf("eos"), add);
  if (tc !== undefined) {
    for (const t of TYPES) {
      const content = contentOf(t);
      if (content !== undefined) set(t, added.find((a) => a.content === content)?.id);
    }
  }
  for (const t of TYPES) set(t, src.config[`${t}_token_id`]);
  const gc = isPlainObject(src.generationConfig) ? src.generationConfig : undefined;
  if (gc !== undefined) {
    for (const t of TYPES) {
      const v = gc[`${t}_token_id`];
      set(t, Array.isArray(v) ? v[0] : v);
    }
  }

  for (const t of TYPES) {
    const id = ids.get(t);
    if (id !== undefined) md.set(ID_KEY[t], GgufValueType.UINT32, id);
  }
  if (tc !== undefined) {
    for (const t of ["bos", "eos", "sep"] as const) {
      const v = tc[`add_${t}_token`];
      if (typeof v === "boolean") add.set(t, v);
    }
  }
  for (const [t, v] of add) md.set(`tokenizer.ggml.add_${t}_token`, GgufValueType.BOOL, v);
  if (tc !== undefined && typeof tc.add_prefix_space === "boolean") {
    md.set("tokenizer.ggml.add_space_prefix", GgufValueType.BOOL, tc.add_prefix_space);
  }
  // NOTE: as in SpecialVocab, templates are only read when tokenizer_config.json exists.
  if (tc !== undefined) addChatTemplate(md, Object.hasOwn(tc, "chat_template") ? tc.chat_template : src.chatTemplateFile);
}

/** add_bos/add_eos from a TemplateProcessing post-processor's single-sequence template. */
function templateAddFlags(
  tj: Record<string, unknown>,
  bos: string | undefined,
  eos: string | undefined,
  add: Map<"bos" | "eos" | "sep", boolean>,
): void {
  const pp = tj.post_processor;
  if (!isPlainObject(pp)) return;
  const procs = Array.isArray(pp.processors) ? pp.processors.filter(isPlainObject) : [pp];
  for (const p of procs) {
    if (p.type !== "TemplateProcessing" || !Array.isArray(p.single) || p.single.length < 2) continue;
    const specialId = (x: unknown): string | undefined => {
      if (!isPlainObject(x) || !isPlainObject(x.SpecialToken)) return undefined;
      const id = x.SpecialToken.id;
      return typeof id === "string" ? id : undefined;
    };
    const first = specialId(p.single[0]);
    const last = specialId(p.single[p.single.length - 1]);
    if (first !== undefined) add.set("bos", first === bos);
    if (last !== undefined) add.set("eos", last === eos);
  }
}

/** gguf-py add_chat_template: a string, or a list of {name, template}. */
function addChatTemplate(md: Metadata, v: unknown): void {
  if (typeof v === "string") {
    md.set("tokenizer.chat_template", GgufValueType.STRING, v);
    return;
  }
  if (!Array.isArray(v)) return;
  let def: string | undefined;
  const names: string[] = [];
  for (const choice of v) {
    if (!isPlainObject(choice)) continue;
    const name = (typeof choice.name === "string" ? choice.name : "").replace(/[^A-Za-z0-9]/g, "_");
    const template = choice.template;
    if (name.length === 0 || typeof template !== "string") continue;
    if (name === "default") def = template;
    else {
      if (!names.includes(name)) names.push(name);
      md.set(`tokenizer.chat_template.${name}`, GgufValueType.STRING, template);
    }
  }
  if (names.length > 0) md.set("tokenizer.chat_templates", GgufValueType.ARRAY, names, GgufValueType.STRING);
  if (def !== undefined) md.set("tokenizer.chat_template", GgufValueType.STRING, def);
}
