"""Speed and peak memory of the training-free spotter on a 10-minute 720p video.

    python benchmarks/spotting_speed.py --source ../shared/data/videos/WolfgangLanger_Pexels.mp4

Makes the test video first (H.264, 1280x720, the source's frame rate): the source's frames
scaled up and played forward then backward until ``--minutes`` are filled, so a real face is
in every frame. Then spots it in this process and reports frames/s, the start-up (opening the
video, loading the face models) and the peak resident memory (``ru_maxrss``), before and after
the spotting, to show that memory does not grow with the video.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import time
from pathlib import Path

import av
import cv2

from fervid.predict.spotting import spot_frames


def make_video(source: Path, out: Path, minutes: float, size=(1280, 720)) -> int:
    """Write the test video; returns its frame count."""
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate
        frames = [cv2.resize(f.to_ndarray(format="rgb24"), size, interpolation=cv2.INTER_CUBIC)
                  for f in container.decode(stream)]
    cycle = frames + frames[-2:0:-1]
    total = int(minutes * 60 * float(rate))
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        for i in range(total):
            frame = av.VideoFrame.from_ndarray(cycle[i % len(cycle)], format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--video", type=Path, default=Path("/tmp/fervid_spot_10min_720p.mp4"))
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    if not args.video.exists():
        # In a child process: holding the source's frames would count in this one's peak.
        t0 = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(
            target=make_video, args=(args.source, args.video, args.minutes))
        child.start()
        child.join()
        print(f"made {args.video} in {time.perf_counter() - t0:.0f} s", flush=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = spot_frames(args.video)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total = result.seconds["total"]
    print(json.dumps({"video": str(args.video), "frames": result.n_frames, "fps": result.fps,
                      "face_frames": int(result.face.sum()),
                      "start_up_s": round(result.seconds["start_up"], 2),
                      "total_s": round(total, 1),
                      "frames_per_s": round(result.n_frames / total, 1),
                      "frames_per_s_after_start_up": round(
                          result.n_frames / (total - result.seconds["start_up"]), 1),
                      "peak_rss_mb_before": round(before), "peak_rss_mb_after": round(after),
                      "intervals": len(result.intervals)}, indent=1))


if __name__ == "__main__":
    main()
