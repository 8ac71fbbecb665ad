#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""web3.py (7.x) against a Hyperion dev node, used the way a dApp developer would.

A local account signs through web3's SignAndSendRawMiddlewareBuilder, contracts
are deployed and called through ``w3.eth.contract``, and web3 fills in gas,
fees and nonce itself.

    python web3_client.py http://127.0.0.1:9944

Exits 0 only when every check passed; otherwise prints what failed and exits 1.
"""

import json
import signal
import sys
from pathlib import Path

from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.middleware import SignAndSendRawMiddlewareBuilder

TIMEOUT_S = 60
CHAIN_ID = 424242
# First and second accounts of "test test test test test test test test test test test junk".
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEV_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
REVERT_REASON = "ERC20: transfer amount exceeds balance"
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

INITIAL_SUPPLY = Web3.to_wei(1_000_000, "ether")
TRANSFER_AMOUNT = Web3.to_wei("1234.5", "ether")

ARTIFACT = Path(__file__).resolve().parent / "contracts" / "HyperionToken.json"


class CheckFailed(Exception):
    pass


def step(message):
    print(f"[web3.py] {message}", flush=True)


def check(condition, message):
    if not condition:
        raise CheckFailed(message)


def check_equal(actual, expected, what):
    check(actual == expected, f"{what}: expected {expected!r}, got {actual!r}")


def expect_revert(what, action):
    """``action`` must fail with the token's revert reason, surfaced by web3 as a
    ContractLogicError carrying the decoded Error(string) and the revert data."""
    try:
        result = action()
    except ContractLogicError as err:
        check_equal(err.message, f"execution reverted: {REVERT_REASON}", f"{what}: error message")
        check(
            isinstance(err.data, str) and err.data.startswith("0x08c379a0"),
            f"{what}: expected Error(string) revert data, got {err.data!r}",
        )
        step(f'{what} reverted with "{err.message}"')
        return
    raise CheckFailed(f"{what}: expected a revert, got {result!r}")


def main(rpc_url):
    artifact = json.loads(ARTIFACT.read_text())

    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 20}))
    check(w3.is_connected(), f"cannot reach {rpc_url}")
    check_equal(w3.eth.chain_id, CHAIN_ID, "chain id")
    step(f"connected to {rpc_url}, chain id {w3.eth.chain_id}")

    account = w3.eth.account.from_key(DEV_KEY)
    check_equal(account.address, DEV_ADDRESS, "dev account address")
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(account), layer=0)
    w3.eth.default_account = account.address
    funds = w3.eth.get_balance(account.address)
    check(funds > 0, f"dev account {account.address} has no funds")
    step(f"dev account {account.address} holds {Web3.from_wei(funds, 'ether')}")

    def wait(tx_hash, what):
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.2)
        check_equal(receipt["status"], 1, f"{what} receipt status")
        check_equal(receipt["transactionHash"], tx_hash, f"{what} receipt transactionHash")
        return receipt

    # Deploy.
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    deploy_hash = factory.constructor("Hyperion Token", "HYP", INITIAL_SUPPLY).transact()
    deploy_receipt = wait(deploy_hash, "deploy")
    token_address = deploy_receipt["contractAddress"]
    check(token_address is not None, "deploy receipt has no contractAddress")
    check(len(w3.eth.get_code(token_address)) > 0, f"no code at {token_address}")
    token = w3.eth.contract(address=token_address, abi=artifact["abi"])
    step(
        f"deployed HyperionToken at {token_address} in block {deploy_receipt['blockNumber']} "
        f"(tx {deploy_hash.to_0x_hex()}, gas used {deploy_receipt['gasUsed']})"
    )

    check_equal(token.functions.name().call(), "Hyperion Token", "name()")
    check_equal(token.functions.symbol().call(), "HYP", "symbol()")
    check_equal(token.functions.decimals().call(), 18, "decimals()")
    check_equal(token.functions.totalSupply().call(), INITIAL_SUPPLY, "totalSupply()")
    check_equal(token.functions.balanceOf(account.address).call(), INITIAL_SUPPLY, "deployer balance after deploy")
    step(f"name/symbol/decimals/totalSupply read back, deployer holds {Web3.from_wei(INITIAL_SUPPLY, 'ether')} HYP")

    # Transfer.
    tx_hash = token.functions.transfer(RECIPIENT, TRANSFER_AMOUNT).transact()
    receipt = wait(tx_hash, "transfer")
    step(
        f"transferred {Web3.from_wei(TRANSFER_AMOUNT, 'ether')} HYP in block {receipt['blockNumber']} "
        f"(tx {tx_hash.to_0x_hex()})"
    )

    # The Transfer event in the receipt.
    transfers = token.events.Transfer().process_receipt(receipt)
    check_equal(len(transfers), 1, "Transfer events in the transfer receipt")
    event = transfers[0]
    check_equal(event["address"], token_address, "Transfer event address")
    check_equal(event["args"]["from"], account.address, "Transfer.from")
    check_equal(event["args"]["to"], RECIPIENT, "Transfer.to")
    check_equal(event["args"]["value"], TRANSFER_AMOUNT, "Transfer.value")
    step(
        f"receipt has Transfer(from={event['args']['from']}, to={event['args']['to']}, "
        f"value={event['args']['value']})"
    )

    # Balances via eth_call.
    sender_balance = token.functions.balanceOf(account.address).call()
    recipient_balance = token.functions.balanceOf(RECIPIENT).call()
    check_equal(sender_balance, INITIAL_SUPPLY - TRANSFER_AMOUNT, "sender balance after transfer")
    check_equal(recipient_balance, TRANSFER_AMOUNT, "recipient balance after transfer")
    step(f"balanceOf: sender {sender_balance}, recipient {recipient_balance}")

    # A transfer of more than the balance: eth_call, eth_estimateGas, and a
    # plain transact() (which web3 estimates first) must all surface the reason.
    too_much = token.functions.transfer(RECIPIENT, sender_balance + 1)
    expect_revert("eth_call of transfer(too much)", too_much.call)
    expect_revert("eth_estimateGas of transfer(too much)", too_much.estimate_gas)
    expect_revert("sending transfer(too much)", too_much.transact)
    check_equal(
        token.functions.balanceOf(account.address).call(),
        sender_balance,
        "sender balance after the refused transfer",
    )

    # eth_getLogs: the mint and the transfer.
    events = token.events.Transfer.get_logs(from_block=deploy_receipt["blockNumber"], to_block="latest")
    check_equal(len(events), 2, "Transfer events found by get_logs")
    mint, sent = events
    check_equal(mint["args"]["from"], ZERO_ADDRESS, "mint Transfer.from")
    check_equal(mint["args"]["to"], account.address, "mint Transfer.to")
    check_equal(mint["args"]["value"], INITIAL_SUPPLY, "mint Transfer.value")
    check_equal(mint["transactionHash"], deploy_hash, "mint event transaction hash")
    check_equal(sent["args"]["from"], account.address, "transfer Transfer.from")
    check_equal(sent["args"]["to"], RECIPIENT, "transfer Transfer.to")
    check_equal(sent["args"]["value"], TRANSFER_AMOUNT, "transfer Transfer.value")
    check_equal(sent["transactionHash"], tx_hash, "transfer event transaction hash")
    to_recipient = token.events.Transfer.get_logs(
        from_block=deploy_receipt["blockNumber"], argument_filters={"to": RECIPIENT}
    )
    check_equal(len(to_recipient), 1, "Transfer events to the recipient (indexed topic filter)")
    step(
        f"get_logs(Transfer) found the mint (block {mint['blockNumber']}) "
        f"and the transfer (block {sent['blockNumber']})"
    )


def on_timeout(signum, frame):
    print(f"[web3.py] FAIL: timed out after {TIMEOUT_S} s", file=sys.stderr, flush=True)
    sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python web3_client.py RPC_URL", file=sys.stderr)
        sys.exit(2)
    signal.signal(signal.SIGALRM, on_timeout)
    signal.alarm(TIMEOUT_S)
    try:
        main(sys.argv[1])
    except CheckFailed as err:
        print(f"[web3.py] FAIL: {err}", file=sys.stderr, flush=True)
        sys.exit(1)
    except Exception:  # anything the library raised: show it whole
        import traceback

        traceback.print_exc()
        print("[web3.py] FAIL: unexpected error (traceback above)", file=sys.stderr, flush=True)
        sys.exit(1)
    print("[web3.py] PASS: all checks passed", flush=True)
