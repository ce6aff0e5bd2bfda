// Reads an MCAP file with the reference reader, @mcap/core (npm), and
// prints what it found as one JSON line, for tests/record_test.c to compare
// with its own reader (cli/mcap.c).
//
//   node mcap_check.js NODE_MODULES_DIR FILE
//
// Two reads:
// - McapStreamReader over the whole file (chunk CRCs checked): the messages
//   of every complete record, and whether the file is complete (`done`);
// - for a complete file, McapIndexedReader (it seeks with the Footer,
//   Summary Offsets and Chunk Indexes, checks the summary CRC and the chunk
//   CRCs, reads messages through the Message Indexes), plus the Data End's
//   data-section CRC computed here.
// Per topic: encoding, metadata, message count, first and last sequence,
// whether sequences go up by one, and FNV-1a 32 over (length, payload) of
// each message in order. Exit status 0 when both reads agree, 1 otherwise.
"use strict";
const fs = require("fs");
const path = require("path");

const modules = path.resolve(process.argv[2]);
const file = process.argv[3];
const { McapStreamReader, McapIndexedReader } = require(path.join(modules, "@mcap/core"));
const fzstd = require(path.join(modules, "fzstd"));
const { crc32 } = require(path.join(modules, "@foxglove/crc"));

const decompressHandlers = {
  zstd: (buffer, size) => {
    const out = fzstd.decompress(buffer, new Uint8Array(Number(size)));
    if (out.length !== Number(size)) throw new Error("zstd: wrong decompressed size");
    return out;
  },
};

function fnv(h, bytes) {
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h >>> 0;
}

function account(topics, channels, msg) {
  const ch = channels.get(msg.channelId);
  if (ch === undefined) throw new Error(`message of unknown channel ${msg.channelId}`);
  let t = topics[ch.topic];
  if (t === undefined) {
    t = topics[ch.topic] = {
      encoding: ch.messageEncoding,
      metadata: Object.fromEntries(ch.metadata),
      count: 0,
      first_seq: msg.sequence,
      last_seq: msg.sequence,
      seq_contiguous: true,
      fnv: 2166136261,
    };
  } else {
    if (msg.sequence !== ((t.last_seq + 1) >>> 0)) t.seq_contiguous = false;
    t.last_seq = msg.sequence;
  }
  t.count++;
  const len = msg.data.length;
  t.fnv = fnv(t.fnv, [len & 0xff, (len >>> 8) & 0xff, (len >>> 16) & 0xff, (len >>> 24) & 0xff]);
  t.fnv = fnv(t.fnv, msg.data);
}

async function main() {
  const data = new Uint8Array(fs.readFileSync(file));
  const result = { stream: null, indexed: null, data_crc_ok: null };

  // The streaming read.
  const reader = new McapStreamReader({ decompressHandlers, validateCrcs: true });
  reader.append(data);
  const channels = new Map();
  const topics = {};
  let messages = 0;
  let rec;
  while ((rec = reader.nextRecord()) !== undefined) {
    if (rec.type === "Channel") channels.set(rec.id, rec);
    else if (rec.type === "Message") {
      account(topics, channels, rec);
      messages++;
    }
  }
  result.stream = { done: reader.done(), messages, topics };

  if (reader.done()) {
    const readable = {
      size: async () => BigInt(data.length),
      read: async (offset, size) => data.subarray(Number(offset), Number(offset + size)),
    };
    const ir = await McapIndexedReader.Initialize({ readable, decompressHandlers });
    const itopics = {};
    let imessages = 0;
    for await (const msg of ir.readMessages({ validateCrcs: true })) {
      account(itopics, ir.channelsById, msg);
      imessages++;
    }
    result.indexed = {
      messages: imessages,
      chunks: ir.chunkIndexes.length,
      statistics_messages: ir.statistics ? Number(ir.statistics.messageCount) : null,
      topics: itopics,
    };
    // The Data End record: opcode, length 4, the CRC of everything before it.
    const de = Number(ir.dataEndOffset);
    const stored = data[de + 9] | (data[de + 10] << 8) | (data[de + 11] << 16) | (data[de + 12] << 24);
    result.data_crc_ok = data[de] === 0x0f && (stored >>> 0) === crc32(data.subarray(0, de));
  }
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ error: String(err && err.message ? err.message : err) }) + "\n");
  process.exit(1);
});
