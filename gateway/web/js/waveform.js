// A waveform drawn on a canvas from the pipeline's peaks (no audio decoding in the browser),
// showing the play position; clicking, dragging or the arrow keys seek the audio element.

import { h } from './dom.js';
import { duration } from './format.js';

export function waveform(peaks, audio) {
  const canvas = h('canvas', {
    class: 'waveform',
    tabindex: 0,
    role: 'slider',
    'aria-label': 'waveform: position in the track',
    'aria-valuemin': 0,
    'aria-valuenow': 0,
  });
  const max = Math.max(...peaks, 1e-9);

  const draw = () => {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
    if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
    const context = canvas.getContext('2d');
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);
    const style = getComputedStyle(canvas);
    const played = audio.duration ? audio.currentTime / audio.duration : 0;
    const bars = Math.max(1, Math.floor(width / 3));
    const middle = height / 2;
    for (let bar = 0; bar < bars; bar += 1) {
      const from = Math.floor((bar / bars) * peaks.length);
      const to = Math.max(from + 1, Math.floor(((bar + 1) / bars) * peaks.length));
      let peak = 0;
      for (let index = from; index < to && index < peaks.length; index += 1) peak = Math.max(peak, peaks[index]);
      const size = Math.max(1, (peak / max) * (middle - 2));
      context.fillStyle = bar / bars < played ? style.getPropertyValue('--wave-played') : style.getPropertyValue('--wave');
      context.fillRect(bar * 3, middle - size, 2, size * 2);
    }
    canvas.setAttribute('aria-valuemax', Math.round(audio.duration || 0));
    canvas.setAttribute('aria-valuenow', Math.round(audio.currentTime));
    canvas.setAttribute('aria-valuetext', `${duration(audio.currentTime)} of ${duration(audio.duration || 0)}`);
  };

  const seekTo = (fraction) => {
    if (!Number.isFinite(audio.duration)) return;
    audio.currentTime = Math.min(Math.max(fraction, 0), 1) * audio.duration;
    draw();
  };
  const fromPointer = (event) => {
    const box = canvas.getBoundingClientRect();
    seekTo((event.clientX - box.left) / box.width);
  };
  canvas.addEventListener('pointerdown', (event) => {
    canvas.setPointerCapture(event.pointerId);
    fromPointer(event);
  });
  canvas.addEventListener('pointermove', (event) => {
    if (canvas.hasPointerCapture(event.pointerId)) fromPointer(event);
  });
  canvas.addEventListener('keydown', (event) => {
    const step = { ArrowLeft: -5, ArrowRight: 5, PageDown: -30, PageUp: 30 }[event.key];
    if (step !== undefined && Number.isFinite(audio.duration)) {
      event.preventDefault();
      seekTo((audio.currentTime + step) / audio.duration);
    } else if (event.key === 'Home' || event.key === 'End') {
      event.preventDefault();
      seekTo(event.key === 'Home' ? 0 : 1);
    }
  });
  for (const name of ['timeupdate', 'loadedmetadata', 'seeked']) audio.addEventListener(name, draw);
  new ResizeObserver(draw).observe(canvas);
  return canvas;
}
