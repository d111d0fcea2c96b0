/**
 * @module
 * A QR code as inline SVG, drawn by `qrcode-generator` from the text (pure computation, no I/O).
 * Used for invite registration links, so a phone can scan them off the admin's screen.
 */

import qrcode from "qrcode-generator";

/** The SVG markup of a QR code of `text` (error correction M). */
export function qrSvg(text: string): string {
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  return qr.createSvgTag({ cellSize: 4, margin: 4, scalable: true });
}

/** The QR code of `text`, labelled for screen readers. */
export function QrCode(props: { text: string; label: string }) {
  return (
    <div
      class="qr"
      role="img"
      aria-label={props.label}
      dangerouslySetInnerHTML={{ __html: qrSvg(props.text) }}
    />
  );
}
