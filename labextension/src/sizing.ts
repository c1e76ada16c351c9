/**
 * The panel's width: about 420 px the first time it opens, then whatever width the user dragged it to,
 * remembered in this browser (JupyterLab's own workspace keeps only proportions, and none on a fresh one).
 */
import { SplitPanel, Widget } from '@lumino/widgets';

export const DEFAULT_WIDTH = 420;
const KEY = 'llm-agent-magic:panel-width';

export function rememberedWidth(): number {
  const stored = Number(window.localStorage.getItem(KEY));
  return Number.isFinite(stored) && stored >= 200 ? stored : DEFAULT_WIDTH;
}

export function rememberWidth(width: number): void {
  if (width >= 200) {
    window.localStorage.setItem(KEY, String(Math.round(width)));
  }
}

/**
 * Give the sidebar holding `panel` this width: the shell's horizontal split panel holds the sidebars and the
 * main area side by side; the other parts keep their widths, the main area gives or takes the difference.
 */
export function setSidebarWidth(panel: Widget, width: number): boolean {
  // panel < the sidebar's stack < its side area < the split panel (the levels between vary with the version).
  let side: Widget = panel;
  while (side.parent && !(side.parent instanceof SplitPanel)) {
    side = side.parent;
  }
  const split = side.parent;
  if (!(split instanceof SplitPanel) || !side.isVisible) {
    return false;
  }
  const index = split.widgets.indexOf(side);
  const total = split.node.clientWidth;
  if (index < 0 || total <= 0) {
    return false;
  }
  const target = Math.min(width + (side.node.offsetWidth - panel.node.offsetWidth), total * 0.7);
  // A hidden sidebar keeps its share for when it opens again (the layout gives it no room meanwhile).
  const shares = split.relativeSizes();
  const sizes = split.widgets.map((w, i) => (w.isVisible ? w.node.offsetWidth : shares[i] * total));
  const main = sizes.reduce((best, size, i) => (i !== index && size > sizes[best] ? i : best), index === 0 ? 1 : 0);
  sizes[main] = Math.max(0, sizes[main] + sizes[index] - target);
  sizes[index] = target;
  split.setRelativeSizes(sizes);
  return true;
}
