/**
 * The Llama family: Llama 2 and 3, TinyLlama, SmolLM, Mistral (no sliding window) and Qwen2.
 *
 * Legend: T = tokens in the batch, D = dim, H = query heads, Hk = KV heads, hd = head size,
 * F = FFN hidden size, V = vocabulary. Weights use GGUF names; a matrix "[in, out]" has `out`
 * rows of `in` elements. Qwen2 differs only by q/k/v biases and NEOX RoPE (from the config).
 */
import type { LlamaConfig } from "./config.js";
import type { Act, AttentionSpec, ModelFamily, Ops, RopeSpec, Vec, Weight, WeightSpace } from "./ops.js";

interface LlamaLayer {
  readonly attnNorm: Vec; //    [D]
  readonly wq: Weight; //       [D, H*hd]   (+ bias [H*hd] in Qwen2)
  readonly wk: Weight; //       [D, Hk*hd]  (+ bias)
  readonly wv: Weight; //       [D, Hk*hd]  (+ bias)
  readonly wo: Weight; //       [H*hd, D]
  readonly ffnNorm: Vec; //     [D]
  readonly wGate: Weight; //    [D, F]
  readonly wUp: Weight; //      [D, F]
  readonly wDown: Weight; //    [F, D]
  readonly attn: AttentionSpec;
}

export interface LlamaModel {
  readonly config: LlamaConfig;
  readonly tokEmbd: Weight; //  [D, V]
  readonly layers: readonly LlamaLayer[];
  readonly outputNorm: Vec; //  [D]
  readonly output: Weight; //   [D, V]  (token_embd when tied)
  readonly rope: RopeSpec; //   for q; k uses the same with Hk heads
  readonly ropeK: RopeSpec;
  // activations, one row per token
  readonly x: Act; //           [T, D]     residual stream
  readonly xn: Act; //          [T, D]     normed input of a block
  readonly xb: Act; //          [T, D]     output of a block
  readonly q: Act; //           [T, H*hd]
  readonly k: Act; //           [T, Hk*hd]
  readonly v: Act; //           [T, Hk*hd]
  readonly att: Act; //         [T, H*hd]  attention output
  readonly hGate: Act; //       [T, F]
  readonly hUp: Act; //         [T, F]
  readonly logits: Act; //      [T, V]
}

function declare(c: LlamaConfig, ws: WeightSpace): LlamaModel {
  const { dim: D, nHeads: H, nKvHeads: Hk, headDim: hd, ffnDim: F, vocabSize: V } = c;
  const group = H / Hk; // query heads per KV head
  const optionalBias = (name: string): { bias?: string } => (ws.has(name) ? { bias: name } : {});
  const layers: LlamaLayer[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const b = `blk.${l}`;
    layers.push({
      attnNorm: ws.vector(`${b}.attn_norm.weight`, D),
      // NOTE: q is split between lanes in units of one KV head's query group and k/v in units of
      // one KV head, so a lane owns whole heads and computes attention for the heads whose KV
      // cache it holds (when the heads do not divide evenly, the runtime splits rows evenly and
      // gathers q, k and v instead).
      wq: ws.matrix(`${b}.attn_q.weight`, { shape: [D, H * hd], shardUnit: group * hd, ...optionalBias(`${b}.attn_q.bias`) }),
      wk: ws.matrix(`${b}.attn_k.weight`, { shape: [D, Hk * hd], shardUnit: hd, ...optionalBias(`${b}.attn_k.bias`) }),
      wv: ws.matrix(`${b}.attn_v.weight`, { shape: [D, Hk * hd], shardUnit: hd, ...optionalBias(`${b}.attn_v.bias`) }),
      wo: ws.matrix(`${b}.attn_output.weight`, { shape: [H * hd, D], ...optionalBias(`${b}.attn_output.bias`) }),
      ffnNorm: ws.vector(`${b}.ffn_norm.weight`, D),
      wGate: ws.matrix(`${b}.ffn_gate.weight`, { shape: [D, F], ...optionalBias(`${b}.ffn_gate.bias`) }),
      wUp: ws.matrix(`${b}.ffn_up.weight`, { shape: [D, F], ...optionalBias(`${b}.ffn_up.bias`) }),
      wDown: ws.matrix(`${b}.ffn_down.weight`, { shape: [F, D], ...optionalBias(`${b}.ffn_down.bias`) }),
      attn: { layer: l, nHeads: H, nKvHeads: Hk, headDim: hd, scale: Math.fround(1 / Math.sqrt(hd)) },
    });
  }
  const tokEmbd = ws.matrix("token_embd.weight", { shape: [D, V] });
  // Llama 3 rope scaling ships as per-pair frequency divisors.
  const freqFactors = ws.has("rope_freqs.weight") ? ws.readSmall("rope_freqs.weight", c.rope.nRot / 2) : undefined;
  const rope: RopeSpec = { nHeads: H, headDim: hd, ...c.rope, freqFactors };
  ws.kvCache({ nLayers: c.nLayers, nHeads: H, nKvHeads: Hk, headDim: hd });
  return {
    config: c,
    tokEmbd,
    layers,
    outputNorm: ws.vector("output_norm.weight", D),
    output: ws.has("output.weight") ? ws.matrix("output.weight", { shape: [D, V] }) : tokEmbd,
    rope,
    ropeK: { ...rope, nHeads: Hk },
    x: ws.activation("x", D),
    xn: ws.activation("xn", D),
    xb: ws.activation("xb", D),
    q: ws.activation("q", H * hd),
    k: ws.activation("k", Hk * hd),
    v: ws.activation("v", Hk * hd),
    att: ws.activation("att", H * hd),
    hGate: ws.activation("h_gate", F),
    hUp: ws.activation("h_up", F),
    logits: ws.activation("logits", V, { perOutputRow: true }),
  };
}

function forward(m: LlamaModel, ops: Ops): void {
  const eps = m.config.normEps;
  ops.embed(m.x, m.tokEmbd); //                       x: [T, D]
  for (let l = 0; l < m.layers.length; l++) {
    const L = m.layers[l]!;
    // attention block
    ops.rmsnorm(m.xn, m.x, L.attnNorm, eps); //       xn: [T, D]
    ops.matmul(m.q, m.xn, L.wq); //                   q:  [T, H*hd]
    ops.matmul(m.k, m.xn, L.wk); //                   k:  [T, Hk*hd]
    ops.matmul(m.v, m.xn, L.wv); //                   v:  [T, Hk*hd]
    ops.rope(m.q, m.rope);
    ops.rope(m.k, m.ropeK);
    ops.attention(m.att, m.q, m.k, m.v, L.attn); //   att: [T, H*hd]; k, v stored in the cache
    ops.matmul(m.xb, m.att, L.wo); //                 xb: [T, D]
    if (l === m.layers.length - 1) {
      // Rows that produce no logits need no feed-forward in the last layer.
      ops.selectOutputRows(m.xb); //                  xb: [R, D]  (R = output rows)
      ops.selectOutputRows(m.x); //                   x:  [R, D]
    }
    ops.add(m.x, m.x, m.xb); //                       x:  [T, D]  residual
    // feed-forward block
    ops.rmsnorm(m.xn, m.x, L.ffnNorm, eps); //        xn: [T, D]
    ops.matmul(m.hGate, m.xn, L.wGate); //            hGate: [T, F]
    ops.matmul(m.hUp, m.xn, L.wUp); //                hUp:   [T, F]
    ops.swiglu(m.hGate, m.hGate, m.hUp); //           hGate = silu(hGate) * hUp
    ops.matmul(m.xb, m.hGate, L.wDown); //            xb: [T, D]
    ops.add(m.x, m.x, m.xb); //                       x:  [T, D]  residual
  }
  ops.rmsnorm(m.xn, m.x, m.outputNorm, eps); //       xn: [R, D]
  ops.matmul(m.logits, m.xn, m.output); //            logits: [R, V]
  ops.output(m.logits);
}

export const llama: ModelFamily<LlamaConfig, LlamaModel> = { name: "llama", declare, forward };
