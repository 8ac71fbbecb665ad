// SPDX-License-Identifier: Apache-2.0
//
// Compiles HyperionToken.sol with the pinned npm `solc` (solc-js, no download)
// and writes HyperionToken.json next to it: { contractName, abi, bytecode,
// solcVersion }. The output is committed, so the client tests never compile.
//
//   node contracts/compile.mjs        (from tests/eth-clients, after npm ci)

import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const here = dirname(fileURLToPath(import.meta.url));
const contractName = "HyperionToken";
const sourceName = `${contractName}.sol`;

const input = {
  language: "Solidity",
  sources: { [sourceName]: { content: readFileSync(join(here, sourceName), "utf8") } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input)));
const diagnostics = output.errors ?? [];
for (const d of diagnostics) console.error(d.formattedMessage ?? d.message);
if (diagnostics.some((d) => d.severity === "error")) {
  console.error("compile.mjs: compilation failed");
  process.exit(1);
}

const compiled = output.contracts?.[sourceName]?.[contractName];
if (!compiled?.evm?.bytecode?.object) {
  console.error(`compile.mjs: no bytecode for ${contractName}`);
  process.exit(1);
}

const artifact = {
  contractName,
  abi: compiled.abi,
  bytecode: "0x" + compiled.evm.bytecode.object,
  solcVersion: solc.version(),
};
const outPath = join(here, `${contractName}.json`);
writeFileSync(outPath, JSON.stringify(artifact, null, 2) + "\n");
console.log(
  `wrote ${outPath} (solc ${artifact.solcVersion}, ${(artifact.bytecode.length - 2) / 2} bytes of creation code)`,
);
