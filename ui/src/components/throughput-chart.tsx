import type { FinishesInMinute } from '../api';
import { count } from '../format';

// Near the width it is shown at, so that the axis text keeps its size.
const WIDTH = 1120;
const HEIGHT = 200;
const LEFT = 44;
const BOTTOM = 22;
const TOP = 8;
const SERIES = ['completed', 'failed', 'cancelled'] as const;

/** The smallest of 2, 4, 10 × 10^n at or above `value`: the axis and its middle line read in whole numbers. */
function niceCeiling(value: number): number {
  if (value <= 2) return 2;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 4, 10]) if (value <= step * power && step * power >= 2) return step * power;
  return 10 * power;
}

const clock = (iso: string): string => {
  const date = new Date(iso);
  return `${String(date.getHours()).padStart(2, '0')}:${String(date.getMinutes()).padStart(2, '0')}`;
};

/**
 * Jobs finished per minute over the last hour as stacked bars (completed, failed, cancelled), drawn as SVG
 * elements with presentation attributes and classes only: the page's policy allows no inline style.
 */
export function ThroughputChart({ minutes }: { minutes: FinishesInMinute[] }) {
  const peak = Math.max(0, ...minutes.map((m) => m.completed + m.failed + m.cancelled));
  const top = niceCeiling(peak);
  const plotWidth = WIDTH - LEFT - 4;
  const plotHeight = HEIGHT - BOTTOM - TOP;
  const slot = plotWidth / Math.max(minutes.length, 1);
  const barWidth = Math.max(1, slot * 0.72);
  const y = (value: number): number => (value / top) * plotHeight;
  const totals = minutes.reduce(
    (sum, m) => ({ completed: sum.completed + m.completed, failed: sum.failed + m.failed }),
    { completed: 0, failed: 0 },
  );

  return (
    <figure class="chart">
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        role="img"
        aria-label={`Jobs finished per minute over the last hour: ${totals.completed} completed, ${totals.failed} failed`}
      >
        {[0, 0.5, 1].map((fraction) => {
          const lineY = TOP + plotHeight - fraction * plotHeight;
          return (
            <g key={fraction} class="chart-grid">
              <line x1={LEFT} x2={WIDTH - 4} y1={lineY} y2={lineY} />
              <text x={LEFT - 6} y={lineY + 4} text-anchor="end">
                {count(Math.round(top * fraction))}
              </text>
            </g>
          );
        })}
        {minutes.map((minute, index) => {
          const x = LEFT + index * slot + (slot - barWidth) / 2;
          let stacked = 0;
          return (
            <g key={minute.minute} class="chart-bar">
              <title>
                {`${clock(minute.minute)}: ${minute.completed} completed, ${minute.failed} failed, ${minute.cancelled} cancelled`}
              </title>
              <rect class="chart-hover" x={LEFT + index * slot} y={TOP} width={slot} height={plotHeight} />
              {SERIES.map((series) => {
                const value = minute[series];
                if (value === 0) return null;
                const height = Math.max(1, y(value));
                stacked += height;
                return (
                  <rect
                    key={series}
                    class={`series-${series}`}
                    x={x}
                    y={TOP + plotHeight - stacked}
                    width={barWidth}
                    height={height}
                  />
                );
              })}
            </g>
          );
        })}
        {minutes.map((minute, index) =>
          index % 15 === 0 || index === minutes.length - 1 ? (
            <text
              key={`label-${minute.minute}`}
              class="chart-label"
              x={LEFT + index * slot + slot / 2}
              y={HEIGHT - 6}
              text-anchor="middle"
            >
              {index === minutes.length - 1 ? 'now' : clock(minute.minute)}
            </text>
          ) : null,
        )}
      </svg>
      <figcaption class="legend">
        <span class="legend-item series-completed">completed</span>
        <span class="legend-item series-failed">failed</span>
        <span class="legend-item series-cancelled">cancelled</span>
        <span class="muted">per minute, last 60 minutes</span>
      </figcaption>
    </figure>
  );
}
