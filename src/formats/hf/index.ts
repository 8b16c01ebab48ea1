export { openHfFolder, type HfModelFile } from "./open.js";
export { translateHfConfig, type HfArchitecture, type HfConfigSources } from "./config.js";
export { ggufTensorName } from "./names.js";
export { permutedSlot, sourceRow } from "./permute.js";
export { llama3RopeFactors, type Llama3RopeParams } from "./rope.js";
export { hfModelName, idToTitle } from "./model-name.js";
