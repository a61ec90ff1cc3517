import { execFile } from 'node:child_process'

/** Thrown when ffmpeg cannot be run: ingest refuses to start without it. */
export class FfmpegMissingError extends Error {
  override name = 'FfmpegMissingError'
}

/** Runs `ffmpeg -version` and returns its first line; throws FfmpegMissingError with what to do. */
export function checkFfmpeg(ffmpegPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(ffmpegPath, ['-hide_banner', '-version'], { timeout: 10_000 }, (err, stdout) => {
      if (err) {
        reject(
          new FfmpegMissingError(
            `ffmpeg not found or not runnable at "${ffmpegPath}" (${(err as NodeJS.ErrnoException).code ?? err.message}): ` +
              'install it (Debian/Ubuntu: apt-get install ffmpeg) or set FFMPEG_PATH'
          )
        )
        return
      }
      resolve(stdout.split('\n')[0] ?? 'ffmpeg')
    })
  })
}
