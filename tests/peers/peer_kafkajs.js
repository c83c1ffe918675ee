// kafkajs against kafkit's development broker: admin calls, producing with the codecs kafkajs
// has built in (none, gzip; snappy, lz4 and zstd need third-party plugins), a consumer group of
// two, and reading what kafkit wrote (with those codecs) byte for byte.
//
// usage: node peer_kafkajs.js BOOTSTRAP WRITTEN_DIR
// Prints one line per check and ends with "N passed, M failed"; exits 1 on any failure.

const fs = require('fs');
const path = require('path');
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');

const [bootstrap, written] = process.argv.slice(2);
const CODECS = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP };
const PER_CODEC = 20;
const run = Date.now();
const topic = `peer-kafkajs-${run}`;
const group = `${topic}-group`;
let passed = 0;
let failed = 0;

function check(what, ok, detail) {
  if (ok) {
    passed++;
    console.log(`[kafkajs] ok   ${what}`);
  } else {
    failed++;
    console.log(`[kafkajs] FAIL ${what}: ${detail}`);
  }
}

function murmur2(data) {
  // Java's murmur2 (seed 0x9747b28c) in 32-bit arithmetic.
  const m = 0x5bd1e995;
  const len = data.length;
  let h = (0x9747b28c ^ len) >>> 0;
  let i = 0;
  for (; len - i >= 4; i += 4) {
    let k = (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)) >>> 0;
    k = Math.imul(k, m) >>> 0;
    k = (k ^ (k >>> 24)) >>> 0;
    k = Math.imul(k, m) >>> 0;
    h = Math.imul(h, m) >>> 0;
    h = (h ^ k) >>> 0;
  }
  const rest = len - i;
  if (rest === 3) h = (h ^ (data[i + 2] << 16)) >>> 0;
  if (rest >= 2) h = (h ^ (data[i + 1] << 8)) >>> 0;
  if (rest >= 1) {
    h = (h ^ data[i]) >>> 0;
    h = Math.imul(h, m) >>> 0;
  }
  h = (h ^ (h >>> 13)) >>> 0;
  h = Math.imul(h, m) >>> 0;
  h = (h ^ (h >>> 15)) >>> 0;
  return h;
}

const hex = (b) => (b === null || b === undefined ? null : Buffer.from(b).toString('hex'));

async function eventually(pred, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await pred()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return pred();
}

async function main() {
  const kafka = new Kafka({
    clientId: 'kafkit-peer',
    brokers: bootstrap.split(','),
    logLevel: logLevel.NOTHING,
    retry: { retries: 5, initialRetryTime: 100 },
  });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true });
  check('CreateTopics', (await admin.listTopics()).includes(topic), 'topic not listed');

  const expected = new Map();
  for (const [name, codec] of Object.entries(CODECS)) {
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const messages = [];
    for (let i = 0; i < PER_CODEC; i++) {
      const key = `js-${name}-k${i}`;
      const value = `js-${name}-v${i}`;
      messages.push({ key, value });
      expected.set(key, value);
    }
    const res = await producer.send({ topic, acks: -1, compression: codec, messages });
    await producer.disconnect();
    const acked = res.reduce((n, r) => n + (r.errorCode === 0 ? 1 : 0), 0);
    check(`produce ${PER_CODEC} records with ${name}`, acked > 0 && res.every((r) => r.errorCode === 0), JSON.stringify(res));
  }

  // A group of two.
  const seen = new Map();
  const assigned = [new Set(), new Set()];
  const members = [0, 1].map(() => kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500 }));
  for (const [i, m] of members.entries()) {
    await m.connect();
    await m.subscribe({ topic, fromBeginning: true });
    m.on(m.events.GROUP_JOIN, (e) => {
      assigned[i] = new Set(e.payload.memberAssignment[topic] || []);
    });
    await m.run({
      eachMessage: async ({ message }) => {
        const k = message.key.toString();
        seen.set(k, (seen.get(k) || []).concat([message.value.toString()]));
      },
    });
  }
  // Each member's latest assignment, once the rebalance has settled: right after the second
  // member joins, the first may still report its previous generation's partitions.
  const disjoint = () => assigned.every((a) => a.size > 0) && ![...assigned[0]].some((p) => assigned[1].has(p));
  await eventually(() => seen.size >= expected.size && disjoint(), 60000);
  const dups = [...seen.values()].filter((v) => v.length > 1).length;
  const same = [...expected].every(([k, v]) => seen.has(k) && seen.get(k)[0] === v);
  check(`group of two read all ${expected.size} records once`, seen.size === expected.size && dups === 0 && same, `read ${seen.size}, duplicated ${dups}`);
  const overlap = [...assigned[0]].filter((p) => assigned[1].has(p));
  check('both members were assigned partitions, disjointly', assigned.every((a) => a.size > 0) && overlap.length === 0, JSON.stringify(assigned.map((a) => [...a])));
  const described = await admin.describeGroups([group]);
  const g = described.groups[0];
  check('DescribeGroups: the group is Stable with 2 members', g.state === 'Stable' && g.members.length === 2, `state ${g.state}, ${g.members.length} members`);
  const listed = (await admin.listGroups()).groups.map((x) => x.groupId);
  check('ListGroups lists the group', listed.includes(group), JSON.stringify(listed));
  for (const m of members) await m.disconnect();

  // What kafkit wrote.
  for (const codec of Object.keys(CODECS)) {
    const want = JSON.parse(fs.readFileSync(path.join(written, `${codec}.json`), 'utf8'));
    const t = `kafkit-written-${codec}`;
    const got = new Map();
    const reader = kafka.consumer({ groupId: `${topic}-reader-${codec}` });
    await reader.connect();
    await reader.subscribe({ topic: t, fromBeginning: true });
    await reader.run({
      eachMessage: async ({ partition, message }) => {
        const headers = [];
        // kafkajs gathers repeated header names into an array, in order.
        for (const [n, v] of Object.entries(message.headers || {})) {
          for (const one of Array.isArray(v) ? v : [v]) headers.push([n, hex(one)]);
        }
        got.set(`${partition}/${message.offset}`, { key: hex(message.key), value: hex(message.value), headers });
      },
    });
    await eventually(() => got.size >= want.length, 30000);
    await reader.disconnect();
    const missing = want.filter((w) => !got.has(`${w.partition}/${w.offset}`));
    check(`read kafkit's ${codec} topic: ${want.length} records at the offsets kafkit reported`, missing.length === 0 && got.size === want.length, `missing ${missing.length}, read ${got.size}`);
    const diffs = want.filter((w) => {
      const r = got.get(`${w.partition}/${w.offset}`);
      if (!r) return false;
      // kafkajs keeps header order per name only: compare as sorted lists.
      const hs = (x) => JSON.stringify([...x].sort());
      return r.key !== w.key || r.value !== w.value || hs(r.headers) !== hs(w.headers);
    });
    check(`kafkit's ${codec} records byte for byte (keys, values, headers, null vs empty)`, diffs.length === 0,
      diffs.slice(0, 2).map((w) => `${JSON.stringify(w).slice(0, 200)} read ${JSON.stringify(got.get(`${w.partition}/${w.offset}`)).slice(0, 200)}`).join('; '));
    const misplaced = want.filter((w) => w.key !== null && (murmur2(Buffer.from(w.key, 'hex')) & 0x7fffffff) % 3 !== w.partition);
    check(`kafkit placed its ${codec} keyed records as Java's murmur2 partitioner does`, misplaced.length === 0, JSON.stringify(misplaced.slice(0, 2)));
  }

  await admin.deleteTopics({ topics: [topic] });
  check('DeleteTopics', await eventually(async () => !(await admin.listTopics()).includes(topic), 10000), 'topic still listed');
  await admin.disconnect();
}

main()
  .catch((e) => {
    failed++;
    console.log(`[kafkajs] FAIL unexpected error: ${e.stack || e}`);
  })
  .finally(() => {
    console.log(`[kafkajs] ${passed} passed, ${failed} failed`);
    process.exit(failed ? 1 : 0);
  });
