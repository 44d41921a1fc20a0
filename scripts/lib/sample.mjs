// A sample "move" video made on the spot: a moving test pattern and a French narration spoken by
// SVOX Pico ("le frigo reste", "quinze cartons de livres"…; pico2wave, installed by the
// bootstrap: Whisper base, which local mode transcribes with, garbles espeak-ng's French),
// encoded as a phone would (H.264 + AAC in MP4, moov atom at the end). Nothing is downloaded.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const NARRATION =
  'Voici le salon. Il y a un canapé trois places, une table basse et un meuble télé. ' +
  'Le frigo reste. Dans la chambre, un lit double et une armoire deux portes. ' +
  'Il y a quinze cartons de livres dans le placard.';

/**
 * Writes an MP4 of `seconds` (narration padded with silence or cut to fit) at `width`×`height`
 * into a fresh temporary directory and returns its path.
 */
export async function makeSample({ seconds = 12, width = 640, height = 360, name = 'sample.mp4', narration = NARRATION } = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dodolens-sample-'));
  const speech = path.join(dir, 'narration.wav');
  await run('pico2wave', ['-l', 'fr-FR', '-w', speech, narration]);
  const file = path.join(dir, name);
  await run(
    'ffmpeg',
    [
      '-v', 'error', '-y',
      '-f', 'lavfi', '-i', `testsrc2=size=${width}x${height}:rate=25`,
      '-i', speech,
      '-filter_complex', `[1:a]apad,atrim=0:${seconds}[a]`,
      '-map', '0:v', '-map', '[a]',
      '-t', String(seconds),
      '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '50', '-pix_fmt', 'yuv420p',
      '-c:a', 'aac', '-b:a', '64k',
      file,
    ],
    { maxBuffer: 16 << 20 },
  );
  return file;
}

/** Removes a sample made by `makeSample` (its whole temporary directory, narration included). */
export async function removeSample(file) {
  await rm(path.dirname(file), { recursive: true, force: true });
}

/** A sample's bytes, with nothing left on disk: what the tests upload. */
export async function sampleBytes(options) {
  const file = await makeSample(options);
  try {
    return await readFile(file);
  } finally {
    await removeSample(file);
  }
}
