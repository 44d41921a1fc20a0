// `scripts/stack`: the full local stack in the foreground until Ctrl-C (or SIGTERM).
import { build, startStack } from './stack.mjs';

const args = process.argv.slice(2);
const vars = {};
let redis = false;
let replicas;
let skipBuild = false;
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === '--redis') redis = true;
  else if (arg === '--replicas') replicas = /^\d+$/.test(args[i + 1] ?? '') ? Number(args[++i]) : 2;
  else if (arg === '--no-build') skipBuild = true;
  else if (arg === '--var' && args[i + 1]?.includes('=')) {
    const [name, ...value] = args[++i].split('=');
    vars[name] = value.join('=');
  } else {
    console.error(`usage: scripts/stack [--redis] [--replicas [N]] [--no-build] [--var NAME=VALUE]...\nunknown argument: ${arg}`);
    process.exit(2);
  }
}

const log = (line) => console.log(`stack: ${line}`);
if (!skipBuild) await build(log);
const stack = await startStack({ vars, redis, replicas, log });
let stopping = false;
const stop = async (signal) => {
  if (stopping) return;
  stopping = true;
  log(`${signal}: stopping…`);
  await stack.stop();
  log('stopped');
  process.exit(0);
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
log(`ready — upload with tus to ${stack.api}/uploads, open ${stack.edgeUrl}/ in a browser; Ctrl-C stops`);
if (stack.analyser === 'local') log('models: LOCAL (set OPENAI_API_KEY for OpenAI); see the README for what local mode sees');
// Keep the event loop alive until a signal arrives.
setInterval(() => {}, 1 << 30);
