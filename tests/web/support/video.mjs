// Test videos made on the spot with ffmpeg: a moving test pattern with noise (so the file has the
// size asked for) and a tone as the sound track, a keyframe every second.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const made = [];

/** Writes `name` (mp4) of `seconds` at roughly `mbit` Mbit/s and returns its path. */
export async function makeVideo(name, { seconds = 8, mbit = 4 } = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dodolens-video-'));
  made.push(dir);
  const file = path.join(dir, name);
  await run('ffmpeg', [
    '-v', 'error', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=16000',
    '-t', String(seconds),
    '-vf', 'noise=alls=30:allf=t',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25',
    '-b:v', `${mbit}M`, '-maxrate', `${mbit}M`, '-bufsize', `${mbit / 2}M`,
    '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest', file,
  ]);
  return file;
}

/** Deletes every video made so far. */
export async function removeVideos() {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}
