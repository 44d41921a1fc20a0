/** Numbers as people read them, in the page's language (French uses a decimal comma). */
import type { Locale } from "./i18n.js";

const UNITS: Record<Locale, readonly string[]> = {
  fr: ["o", "ko", "Mo", "Go"],
  en: ["B", "kB", "MB", "GB"],
};

function number(locale: Locale, value: number, digits: number): string {
  return new Intl.NumberFormat(locale, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(value);
}

/** Decimal units (1 MB = 10^6 bytes), as phones and upload speeds are usually shown. */
export function formatBytes(locale: Locale, bytes: number): string {
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1000 && unit < UNITS[locale].length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${number(locale, value, digits)}\u00a0${UNITS[locale][unit]}`;
}

export function formatRate(locale: Locale, bytesPerSecond: number): string {
  return `${formatBytes(locale, bytesPerSecond)}/s`;
}

/** "45 s", "2 min 05 s", "1 h 02 min": precise enough for an upload, never "0 s" while busy. */
export function formatDuration(seconds: number): string {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 60) return `${s}\u00a0s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return `${minutes}\u00a0min\u00a0${String(s % 60).padStart(2, "0")}\u00a0s`;
  return `${Math.floor(minutes / 60)}\u00a0h\u00a0${String(minutes % 60).padStart(2, "0")}\u00a0min`;
}

export function formatPercent(locale: Locale, fraction: number): string {
  const clamped = Math.min(1, Math.max(0, fraction));
  return new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 0 }).format(
    Math.floor(clamped * 100) / 100,
  );
}

/** Volumes with two decimals, as movers quote them. */
export function formatVolume(locale: Locale, m3: number): string {
  return `${number(locale, m3, 2)}\u00a0m³`;
}

/** Recording time as m:ss. */
export function formatClock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
