/**
 * A QR code drawn as an SVG element from DOM calls only (no markup strings, no style attributes: the page's
 * CSP allows neither). The modules come from the `uqr` encoder; the payload goes in as bytes, so the code is
 * in byte mode and a scanner reads back exactly those bytes.
 */
import { encode } from 'uqr';

const SVG = 'http://www.w3.org/2000/svg';
/** Light modules around the symbol, as the QR standard asks for reliable scanning. */
const QUIET_ZONE = 4;
/** Screen pixels per module: large enough for a phone camera across a desk. */
const MODULE_PX = 6;

/** An `<svg>` of the QR code of `payload` (byte mode, error correction M, a 4-module quiet zone). */
export function qrSvg(payload: Uint8Array, label: string): SVGSVGElement {
  const qr = encode(Array.from(payload), { ecc: 'M', border: QUIET_ZONE });
  let d = '';
  qr.data.forEach((row, y) =>
    row.forEach((dark, x) => {
      if (dark) d += `M${x} ${y}h1v1h-1z`;
    }),
  );
  const svg = document.createElementNS(SVG, 'svg');
  const px = String(qr.size * MODULE_PX);
  for (const [name, value] of [
    ['viewBox', `0 0 ${qr.size} ${qr.size}`],
    ['width', px],
    ['height', px],
    ['shape-rendering', 'crispEdges'],
    ['role', 'img'],
    ['aria-label', label],
    ['class', 'qr-code'],
  ] as const)
    svg.setAttribute(name, value);
  const background = document.createElementNS(SVG, 'rect');
  for (const [name, value] of [
    ['width', '100%'],
    ['height', '100%'],
    ['fill', '#fff'],
  ] as const)
    background.setAttribute(name, value);
  const modules = document.createElementNS(SVG, 'path');
  modules.setAttribute('d', d);
  modules.setAttribute('fill', '#000');
  svg.append(background, modules);
  return svg;
}
