// SPDX-License-Identifier: Apache-2.0
//
// ethers v6 against a Hyperion dev node, used the way a dApp developer would:
// a Wallet on a JsonRpcProvider, ContractFactory.deploy, Contract calls, and
// ethers filling in gas, fees and nonce itself.
//
//   node ethers_client.mjs http://127.0.0.1:9944
//
// Exits 0 only when every check passed; otherwise prints what failed and exits 1.

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ethers } from "ethers";

const TIMEOUT_MS = 60_000;
const CHAIN_ID = 424242n;
// First and second accounts of "test test test test test test test test test test test junk".
const DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const DEV_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const REVERT_REASON = "ERC20: transfer amount exceeds balance";

const INITIAL_SUPPLY = ethers.parseUnits("1000000", 18);
const TRANSFER_AMOUNT = ethers.parseUnits("1234.5", 18);

class CheckFailed extends Error {}

function step(message) {
  console.log(`[ethers] ${message}`);
}

function check(condition, message) {
  if (!condition) throw new CheckFailed(message);
}

function checkEqual(actual, expected, what) {
  check(actual === expected, `${what}: expected ${expected}, got ${actual}`);
}

// A call that must fail with the token's revert reason, surfaced by ethers as
// a CALL_EXCEPTION carrying the decoded Error(string).
async function expectRevert(what, promise) {
  try {
    const result = await promise;
    throw new CheckFailed(`${what}: expected a revert, got ${result}`);
  } catch (err) {
    if (err instanceof CheckFailed) throw err;
    check(
      ethers.isError(err, "CALL_EXCEPTION"),
      `${what}: expected CALL_EXCEPTION, got ${err.code ?? "no code"}: ${err.message}`,
    );
    checkEqual(err.reason, REVERT_REASON, `${what}: revert reason`);
    check(
      typeof err.data === "string" && err.data.startsWith("0x08c379a0"),
      `${what}: expected Error(string) revert data, got ${err.data}`,
    );
    step(`${what} reverted with "${err.reason}"`);
  }
}

async function main(rpcUrl) {
  const artifact = JSON.parse(
    readFileSync(join(dirname(fileURLToPath(import.meta.url)), "contracts", "HyperionToken.json"), "utf8"),
  );

  // Blocks come every 200 ms on a dev node: poll often, and turn off ethers' 250 ms cache of
  // identical requests, or a second eth_getTransactionCount("pending") soon after the first
  // would return the nonce the first one already used.
  const provider = new ethers.JsonRpcProvider(rpcUrl, undefined, { cacheTimeout: -1, pollingInterval: 250 });
  try {
    const network = await provider.getNetwork();
    checkEqual(network.chainId, CHAIN_ID, "chain id");
    step(`connected to ${rpcUrl}, chain id ${network.chainId}`);

    const wallet = new ethers.Wallet(DEV_KEY, provider);
    checkEqual(wallet.address, DEV_ADDRESS, "dev account address");
    const funds = await provider.getBalance(wallet.address);
    check(funds > 0n, `dev account ${wallet.address} has no funds`);
    step(`dev account ${wallet.address} holds ${ethers.formatEther(funds)}`);

    // Deploy.
    const factory = new ethers.ContractFactory(artifact.abi, artifact.bytecode, wallet);
    const token = await factory.deploy("Hyperion Token", "HYP", INITIAL_SUPPLY);
    const deployTx = token.deploymentTransaction();
    const deployReceipt = await deployTx.wait();
    checkEqual(deployReceipt.status, 1, "deploy receipt status");
    const tokenAddress = await token.getAddress();
    checkEqual(deployReceipt.contractAddress, tokenAddress, "deploy receipt contractAddress");
    check((await provider.getCode(tokenAddress)) !== "0x", `no code at ${tokenAddress}`);
    step(
      `deployed HyperionToken at ${tokenAddress} in block ${deployReceipt.blockNumber} ` +
        `(tx ${deployTx.hash}, gas used ${deployReceipt.gasUsed})`,
    );

    checkEqual(await token.name(), "Hyperion Token", "name()");
    checkEqual(await token.symbol(), "HYP", "symbol()");
    checkEqual(await token.decimals(), 18n, "decimals()");
    checkEqual(await token.totalSupply(), INITIAL_SUPPLY, "totalSupply()");
    checkEqual(await token.balanceOf(wallet.address), INITIAL_SUPPLY, "deployer balance after deploy");
    step(`name/symbol/decimals/totalSupply read back, deployer holds ${ethers.formatUnits(INITIAL_SUPPLY, 18)} HYP`);

    // Transfer.
    const tx = await token.transfer(RECIPIENT, TRANSFER_AMOUNT);
    const receipt = await tx.wait();
    checkEqual(receipt.status, 1, "transfer receipt status");
    checkEqual(receipt.hash, tx.hash, "transfer receipt hash");
    step(`transferred ${ethers.formatUnits(TRANSFER_AMOUNT, 18)} HYP in block ${receipt.blockNumber} (tx ${tx.hash})`);

    // The Transfer event in the receipt.
    const transfers = receipt.logs
      .filter((log) => log.address === tokenAddress)
      .map((log) => token.interface.parseLog(log))
      .filter((parsed) => parsed?.name === "Transfer");
    checkEqual(transfers.length, 1, "Transfer events in the transfer receipt");
    const [event] = transfers;
    checkEqual(event.args.from, wallet.address, "Transfer.from");
    checkEqual(event.args.to, RECIPIENT, "Transfer.to");
    checkEqual(event.args.value, TRANSFER_AMOUNT, "Transfer.value");
    step(`receipt has Transfer(from=${event.args.from}, to=${event.args.to}, value=${event.args.value})`);

    // Balances via eth_call.
    const senderBalance = await token.balanceOf(wallet.address);
    const recipientBalance = await token.balanceOf(RECIPIENT);
    checkEqual(senderBalance, INITIAL_SUPPLY - TRANSFER_AMOUNT, "sender balance after transfer");
    checkEqual(recipientBalance, TRANSFER_AMOUNT, "recipient balance after transfer");
    step(`balanceOf: sender ${senderBalance}, recipient ${recipientBalance}`);

    // A transfer of more than the balance: eth_call, eth_estimateGas, and a
    // plain send (which ethers estimates first) must all surface the reason.
    const tooMuch = senderBalance + 1n;
    await expectRevert("eth_call of transfer(too much)", token.transfer.staticCall(RECIPIENT, tooMuch));
    await expectRevert("eth_estimateGas of transfer(too much)", token.transfer.estimateGas(RECIPIENT, tooMuch));
    await expectRevert("sending transfer(too much)", token.transfer(RECIPIENT, tooMuch));
    checkEqual(await token.balanceOf(wallet.address), senderBalance, "sender balance after the refused transfer");

    // eth_getLogs through queryFilter: the mint and the transfer.
    const events = await token.queryFilter(token.filters.Transfer(), deployReceipt.blockNumber, "latest");
    checkEqual(events.length, 2, "Transfer events found by queryFilter");
    const [mint, sent] = events;
    checkEqual(mint.args.from, ethers.ZeroAddress, "mint Transfer.from");
    checkEqual(mint.args.to, wallet.address, "mint Transfer.to");
    checkEqual(mint.args.value, INITIAL_SUPPLY, "mint Transfer.value");
    checkEqual(mint.transactionHash, deployTx.hash, "mint event transaction hash");
    checkEqual(sent.args.from, wallet.address, "transfer Transfer.from");
    checkEqual(sent.args.to, RECIPIENT, "transfer Transfer.to");
    checkEqual(sent.args.value, TRANSFER_AMOUNT, "transfer Transfer.value");
    checkEqual(sent.transactionHash, tx.hash, "transfer event transaction hash");
    const toRecipient = await token.queryFilter(token.filters.Transfer(null, RECIPIENT), deployReceipt.blockNumber);
    checkEqual(toRecipient.length, 1, "Transfer events to the recipient (indexed topic filter)");
    step(`queryFilter(Transfer) found the mint (block ${mint.blockNumber}) and the transfer (block ${sent.blockNumber})`);
  } finally {
    provider.destroy();
  }
}

const rpcUrl = process.argv[2];
if (!rpcUrl || process.argv.length !== 3) {
  console.error("usage: node ethers_client.mjs RPC_URL");
  process.exit(2);
}
const timer = setTimeout(() => {
  console.error(`[ethers] FAIL: timed out after ${TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, TIMEOUT_MS);
timer.unref();

try {
  await main(rpcUrl);
  console.log("[ethers] PASS: all checks passed");
  process.exit(0);
} catch (err) {
  console.error(`[ethers] FAIL: ${err instanceof CheckFailed ? err.message : err.stack ?? err}`);
  process.exit(1);
}
