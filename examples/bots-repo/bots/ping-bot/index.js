'use strict';
// Ping bot: an example Node.js bot with a pinned npm dependency (discord.js).
//
// Environment:
//   DISCORD_TOKEN      bot token; unset or empty runs the bot offline (heartbeat only)
//   BOTFLEET_BOT       bot name in the logs (set by botfleet.pm2; defaults to "ping-bot")
//   BOTFLEET_REVISION  git revision the bot runs (set by botfleet.pm2; defaults to "unknown")
//   HEARTBEAT_SECONDS  seconds between heartbeats (default 10)

const fs = require('node:fs');
const path = require('node:path');

const name = process.env.BOTFLEET_BOT || 'ping-bot';
const revision = process.env.BOTFLEET_REVISION || 'unknown';
const token = (process.env.DISCORD_TOKEN || '').trim();
const mode = token ? 'online' : 'offline';
const statePath = path.join(__dirname, 'data', 'state.json');

function fail(message) {
  console.error(`${name} stopped on an error: ${message}`);
  process.exit(1);
}

function readHeartbeatSeconds() {
  const raw = (process.env.HEARTBEAT_SECONDS || '').trim();
  if (raw === '') {
    return 10;
  }
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    fail(`Invalid HEARTBEAT_SECONDS "${raw}": set a positive number of seconds`);
  }
  return seconds;
}

function loadState() {
  let state;
  try {
    state = JSON.parse(fs.readFileSync(statePath, 'utf8'));
  } catch (error) {
    if (error.code !== 'ENOENT') {
      console.warn(`Unable to read state file ${statePath}, starting a new one: ${error.message}`);
    }
    return {};
  }
  if (state === null || typeof state !== 'object' || !Number.isInteger(state.starts ?? 0)) {
    console.warn(`Unable to use state file ${statePath}, starting a new one: unexpected content`);
    return {};
  }
  return state;
}

// Writes to a temporary file and renames it, so a reader sees the old or the new file, never a part.
function saveState(state) {
  fs.mkdirSync(path.dirname(statePath), { recursive: true });
  const temporary = `${statePath}.${process.pid}.tmp`;
  const fd = fs.openSync(temporary, 'w');
  try {
    fs.writeFileSync(fd, `${JSON.stringify(state, null, 2)}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temporary, statePath);
}

// NOTE: this online path follows the discord.js 14 documentation but has not been run against
// Discord; only the offline mode has been run.
function connectToDiscord() {
  // Required here so that offline mode runs without node_modules.
  const { Client, Events, GatewayIntentBits } = require('discord.js');
  const client = new Client({
    intents: [
      GatewayIntentBits.Guilds,
      GatewayIntentBits.GuildMessages,
      GatewayIntentBits.MessageContent,
    ],
  });
  client.once(Events.ClientReady, (ready) => {
    console.log(`Logged in to Discord as ${ready.user.tag}`);
  });
  client.on(Events.MessageCreate, async (message) => {
    if (message.author.bot || message.content.trim() !== '!ping') {
      return;
    }
    try {
      await message.reply(`pong (revision ${revision})`);
    } catch (error) {
      console.error(`Unable to reply to !ping in channel ${message.channelId}: ${error.message}`);
    }
  });
  client.login(token).catch((error) => {
    fail(`Unable to log in to Discord: ${error.message}. Check DISCORD_TOKEN`);
  });
  return client;
}

const interval = readHeartbeatSeconds();
const state = loadState();
state.starts = (state.starts ?? 0) + 1;
state.revision = revision;
try {
  saveState(state);
} catch (error) {
  fail(`Unable to write state file ${statePath}: ${error.message}`);
}
const offlineNote = token ? '' : ' (DISCORD_TOKEN is not set)';
console.log(
  `${name} starting: revision ${revision}, ${mode} mode${offlineNote}, start number ${state.starts}`,
);

let count = 0;
function heartbeat() {
  count += 1;
  state.last_heartbeat = new Date().toISOString().replace(/\.\d{3}Z$/, '+00:00');
  try {
    saveState(state);
  } catch (error) {
    console.warn(`Unable to write state file ${statePath}: ${error.message}`);
  }
  console.log(`heartbeat ${count}: revision ${revision}, ${mode} mode`);
}
heartbeat();
const timer = setInterval(heartbeat, interval * 1000);
const client = token ? connectToDiscord() : null;

function stop(signal) {
  console.log(`Received ${signal}, stopping`);
  clearInterval(timer);
  Promise.resolve(client?.destroy()).finally(() => {
    console.log(`${name} stopped`);
    process.exit(0);
  });
}
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
