/**
 * Chat prompts: the model's Jinja chat template (GGUF `tokenizer.chat_template`), rendered with
 * @huggingface/jinja, or our fallback when the model has none.
 *
 * Special-token text inside message contents must stay text (no prompt injection of control
 * tokens): the template renders unique placeholders, the contents are put back in their place,
 * and the prompt is tokenized as one string with special tokens recognised everywhere except in
 * the contents (`plainRanges`). If a template rewrites contents so that the placeholders do not
 * survive, special tokens are recognised everywhere (what llama.cpp always does).
 *
 * Fallback (no template): "<role>: <content>\n" per message (one space after the colon), then "assistant:", with the model's
 * BOS if it adds one. Good enough for base models; instruction-tuned models ship templates.
 */
import { randomBytes } from "node:crypto";
import { Template } from "@huggingface/jinja";
import { UsageError } from "../errors.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { type ChatMessage, messageText } from "./openai-schema.js";

const MAX_TEMPLATE_CHARS = 256 * 1024;
const MAX_RENDERED_CHARS = 8 * 1024 * 1024;

export class ChatTemplate {
  private readonly template: Template | undefined;

  constructor(
    private readonly tokenizer: Tokenizer,
    source: string | undefined,
  ) {
    if (source !== undefined && source.length > 0 && source.length <= MAX_TEMPLATE_CHARS) {
      try {
        this.template = new Template(source);
      } catch {
        this.template = undefined; // an unparsable template: use the fallback
      }
    }
  }

  get kind(): "model" | "fallback" {
    return this.template === undefined ? "fallback" : "model";
  }

  /** Token ids of the chat prompt, ready for generation. */
  tokenize(messages: readonly ChatMessage[]): number[] {
    const tok = this.tokenizer;
    if (this.template === undefined) {
      // NOTE: replies continue "assistant:" and so start with a space (" Once"); one space after
      // the colon either way, so a reply sent back in the next turn tokenizes as it was generated
      // (and its KV blocks are found in the prefix cache).
      const line = (m: ChatMessage): string => {
        const c = messageText(m.content);
        return `${m.role}:${c.startsWith(" ") ? "" : " "}${c}\n`;
      };
      const text = messages.map(line).join("") + "assistant:";
      return tok.encode(text, { addSpecial: true, parseSpecial: false });
    }
    const tag = `\u0000${randomBytes(6).toString("hex")}`;
    const contents = messages.map((m) => messageText(m.content));
    const rendered = this.render(messages.map((m, i) => ({ role: m.role, content: `${tag}${i}${tag}` })));
    // Put the contents back, remembering where they are so their text cannot become special tokens.
    const parts = rendered.split(tag);
    let text = "";
    const plain: [number, number][] = [];
    let intact = parts.length % 2 === 1;
    for (let i = 0; i < parts.length && intact; i++) {
      if (i % 2 === 0) {
        text += parts[i]!;
        continue;
      }
      const c = /^\d+$/.test(parts[i]!) ? contents[Number(parts[i])] : undefined;
      if (c === undefined) intact = false;
      else {
        plain.push([text.length, text.length + c.length]);
        text += c;
      }
    }
    // The template rewrote the placeholders: render the real contents, special tokens everywhere.
    if (!intact) text = this.render(messages.map((m, i) => ({ role: m.role, content: contents[i]! })));
    const bos = tok.bosId === undefined ? "" : tok.tokenText(tok.bosId);
    const ids = tok.encode(text, { addSpecial: false, parseSpecial: true, ...(intact ? { plainRanges: plain } : {}) });
    if (tok.addBos && tok.bosId !== undefined && !(bos.length > 0 && text.startsWith(bos))) ids.unshift(tok.bosId);
    return ids;
  }

  private render(messages: { role: string; content: string }[]): string {
    const tok = this.tokenizer;
    let rendered: string;
    try {
      rendered = this.template!.render({
        messages,
        add_generation_prompt: true,
        bos_token: tok.bosId === undefined ? "" : tok.tokenText(tok.bosId),
        eos_token: tok.eosId === undefined ? "" : tok.tokenText(tok.eosId),
      });
    } catch (e) {
      throw new UsageError("the chat template failed on these messages", { got: e instanceof Error ? e.message : String(e), hint: "check the roles and their order" });
    }
    if (rendered.length > MAX_RENDERED_CHARS) {
      throw new UsageError("the chat prompt is too long", { expected: `<= ${MAX_RENDERED_CHARS} characters`, got: String(rendered.length) });
    }
    return rendered;
  }
}
