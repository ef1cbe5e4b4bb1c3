export interface PlanNode {
  type: string;
  relation?: string;
  index?: string;
}

/** Every node of a plan from `EXPLAIN (FORMAT JSON)` (its `Plan`), depth first. */
export function planNodes(plan: Record<string, any>): PlanNode[] {
  const nodes: PlanNode[] = [];
  const walk = (node: Record<string, any>): void => {
    nodes.push({ type: node['Node Type'], relation: node['Relation Name'], index: node['Index Name'] });
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(plan);
  return nodes;
}
