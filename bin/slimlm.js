#!/usr/bin/env node
// The CLI lives in TypeScript (src/cli); `npm install` builds it into dist/.
import { main } from "../dist/src/cli/main.js";

await main(process.argv);
