export { evaluatePerplexity, dataTokens, windowsOf, type KldReport, type PerplexityOptions, type PerplexityReport } from "./perplexity.js";
export { argmaxRow, klDivergence, logSumExp, percentile } from "./logits.js";
